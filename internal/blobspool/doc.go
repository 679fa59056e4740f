// Package blobspool puts a local spool in front of a remote browserd.BlobStore (S3), so
// that artifact writes survive the remote being unreachable: Put and DeletePrefix are
// written to a journal of files in a local directory first and return; one background
// uploader replays the journal to the remote in order, retrying with backoff, and
// removes each entry once the remote took it. Open and List see the journal over the
// remote, so a blob is readable the moment Put returns. The journal survives a restart:
// New loads it and the uploader carries on. Reads of blobs that are only remote fail
// with the remote's error (bb.CodeUnavailable while it is down).
package blobspool
