// Package s3blob keeps blobs (recordings, downloads, uploads, context snapshots,
// extension zips) in an S3-compatible bucket. It implements browserd.BlobStore on
// github.com/minio/minio-go/v7: objects stream in bounded parts (one part buffer per
// Put, never the whole object), S3 errors that say the service is unreachable become
// bb.CodeUnavailable, and a missing object is bb.CodeNotFound. ParseURL reads the
// --blob-store s3://BUCKET[/PREFIX]?endpoint=…&region=… form.
package s3blob
