// Package fsblob keeps blobs (downloads, uploads, recording chunks) as files in a local
// directory. It implements browserd.BlobStore; an S3-compatible store can replace it.
package fsblob
