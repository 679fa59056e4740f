package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/blobspool"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/s3blob"
)

// BlobCredentials are the S3 credentials of --blob-store s3://…, read from the standard
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (never from a flag,
// so that they stay out of `ps` and of -help).
type BlobCredentials struct {
	AccessKey, SecretKey, SessionToken string
}

// loadBlobCredentials reads BlobCredentials from the environment.
func loadBlobCredentials(getenv func(string) string) BlobCredentials {
	return BlobCredentials{AccessKey: getenv("AWS_ACCESS_KEY_ID"), SecretKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN")}
}

// validateBlobStore checks --blob-store: empty (the data dir) or an s3:// URL.
func (c *Config) validateBlobStore() error {
	if c.BlobStore == "" {
		return nil
	}
	if !s3blob.IsURL(c.BlobStore) {
		return fmt.Errorf("blob-store must be s3://BUCKET[/PREFIX]?endpoint=…&region=…, or empty for <data-dir>/blobs; got %q", c.BlobStore)
	}
	if _, err := s3blob.ParseURL(c.BlobStore); err != nil {
		return fmt.Errorf("blob-store: %w", err)
	}
	return nil
}

// blobs are the server's blob stores: artifacts (recordings, downloads, uploads) write
// through a local spool when the blobs are remote, so that an S3 outage loses none of
// them; profiles (context snapshots, extensions) write to the store itself, so that a
// context write-back S3 does not take fails and leaves the context's previous snapshot
// current (docs/COMPATIBILITY.md), and delete through the spool.
type blobs struct {
	artifacts, profiles bb.BlobStore
	kind                string // "fs" or "s3", for /readyz
	ping                func(ctx context.Context) error
	spool               *blobspool.Spool // nil for the local disk
	where               string
}

// openBlobs opens --blob-store: <data-dir>/blobs by default, or S3 with a spool in
// <data-dir>/blob-spool. It fails at start, saying why, when S3 cannot be used.
func openBlobs(ctx context.Context, cfg Config, logger *slog.Logger) (*blobs, error) {
	if cfg.BlobStore == "" {
		dir := filepath.Join(cfg.DataDir, "blobs")
		st, err := fsblob.New(dir)
		if err != nil {
			return nil, err
		}
		return &blobs{artifacts: st, profiles: st, kind: "fs", where: "local disk",
			ping: func(context.Context) error { return nil }}, nil
	}
	loc, err := s3blob.ParseURL(cfg.BlobStore)
	if err != nil {
		return nil, fmt.Errorf("blob-store: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := s3blob.Open(octx, s3blob.Config{Location: loc, AccessKey: cfg.BlobCredentials.AccessKey,
		SecretKey: cfg.BlobCredentials.SecretKey, SessionToken: cfg.BlobCredentials.SessionToken})
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	sp, err := blobspool.New(blobspool.Config{Dir: filepath.Join(cfg.DataDir, "blob-spool"), Remote: st, Logger: logger})
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("bucket %s", loc.Bucket)
	if loc.Endpoint != "" {
		where += " at " + loc.Endpoint
	}
	return &blobs{artifacts: sp, profiles: spooledDeletes{st, sp}, kind: "s3", ping: st.Ping, spool: sp, where: where}, nil
}

// spooledDeletes is the profiles' view of S3: puts and reads go to S3 itself (a
// write-back S3 refuses fails, and the context keeps its previous snapshot), deletes go
// through the spool, so that deleting a context or an extension, or a replaced
// snapshot, while S3 is down still happens once it is back. The prefixes deleted
// (contexts/<id>/, contexts/<id>/<version>/, extensions/<id>/) are never written again,
// so a delete replayed late cannot remove a newer put.
type spooledDeletes struct {
	*s3blob.Store
	spool *blobspool.Spool
}

func (d spooledDeletes) DeletePrefix(ctx context.Context, prefix string) error {
	return d.spool.DeletePrefix(ctx, prefix)
}

// close uploads what the spool holds, for as long as ctx allows, and stops it; what is
// left is uploaded at the next start.
func (b *blobs) close(ctx context.Context) error {
	if b.spool == nil {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := b.spool.Flush(fctx)
	cancel()
	b.spool.Close()
	if err != nil {
		return fmt.Errorf("%w; they stay in the spool for the next start", err)
	}
	return nil
}

// check is the /readyz line of the blob store: its kind, where it is, the writes
// waiting in the spool, or why it does not answer. It never shows credentials.
func (b *blobs) check(ctx context.Context) check {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := b.ping(pctx)
	cancel()
	detail := b.kind + ": " + b.where
	if b.spool != nil {
		n, last := b.spool.Pending()
		detail += fmt.Sprintf("; %d writes waiting in the local spool", n)
		if err == nil && last != nil {
			detail += " (last upload error: " + last.Error() + ")"
		}
	}
	if err != nil {
		var e *bb.Error
		if errors.As(err, &e) && e.Err != nil {
			err = e.Err
		}
		return check{Detail: detail + ": " + err.Error()}
	}
	return check{OK: true, Detail: detail}
}
