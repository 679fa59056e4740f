package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/s3blob"
)

const migrateBlobsUsage = `Usage:
  browserd admin migrate-blobs --from DATA-DIR --to s3://BUCKET[/PREFIX]?endpoint=…&region=…

Copies every blob of DATA-DIR/blobs (recordings, downloads, uploads, context snapshots,
extensions) to S3, with the credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN. It may run again: blobs already in S3 with the same size and SHA-256
are skipped. Run it with the server stopped for a complete copy (or once more after
stopping it), then start the server with --blob-store set to the same URL.
`

// migrateTarget is what migrateBlobs needs of the destination; *s3blob.Store has it.
type migrateTarget interface {
	PutSHA256(ctx context.Context, key string, r io.Reader, sha256 string) (int64, error)
	Stat(ctx context.Context, key string) (size int64, sha256 string, err error)
}

// adminMigrateBlobs runs `browserd admin migrate-blobs`.
func adminMigrateBlobs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin migrate-blobs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateBlobsUsage) }
	from := fs.String("from", getenv("BROWSERD_DATA_DIR"), "data directory whose blobs/ to copy (env BROWSERD_DATA_DIR)")
	to := fs.String("to", "", "the S3 blob store, s3://BUCKET[/PREFIX]?endpoint=…&region=…")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{errors.New("admin migrate-blobs needs --from DATA-DIR and --to s3://…")}
	}
	loc, err := s3blob.ParseURL(*to)
	if err != nil {
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	src, err := fsblob.Existing(filepath.Join(*from, "blobs"))
	if err != nil {
		return fmt.Errorf("no blobs in %s (is it browserd's data dir?): %w", *from, err)
	}
	creds := loadBlobCredentials(getenv)
	dst, err := s3blob.Open(ctx, s3blob.Config{Location: loc, AccessKey: creds.AccessKey, SecretKey: creds.SecretKey, SessionToken: creds.SessionToken})
	if err != nil {
		return err
	}
	st, err := migrateBlobs(ctx, src, dst, stderr)
	fmt.Fprintf(stdout, "copied %d blobs (%d bytes), skipped %d already in %s\n", st.copied, st.bytes, st.skipped, loc.Bucket)
	return err
}

// migrateStats counts what migrateBlobs did.
type migrateStats struct {
	copied, skipped int
	bytes           int64
}

// migrateBlobs copies every blob of src to dst that dst does not hold with the same
// size and SHA-256. A blob that disappears meanwhile (a retention purge) is skipped.
func migrateBlobs(ctx context.Context, src bb.BlobStore, dst migrateTarget, progress io.Writer) (migrateStats, error) {
	var st migrateStats
	list, err := src.List(ctx, "")
	if err != nil {
		return st, err
	}
	for _, b := range list {
		sum, size, err := blobSHA256(ctx, src, b.Key)
		if bb.CodeOf(err) == bb.CodeNotFound {
			continue
		} else if err != nil {
			return st, err
		}
		dsize, dsum, err := dst.Stat(ctx, b.Key)
		if err == nil && dsize == size && dsum == sum {
			st.skipped++
			continue
		} else if err != nil && bb.CodeOf(err) != bb.CodeNotFound {
			return st, fmt.Errorf("check %s in S3: %w", b.Key, err)
		}
		r, err := src.Open(ctx, b.Key)
		if bb.CodeOf(err) == bb.CodeNotFound {
			continue
		} else if err != nil {
			return st, err
		}
		n, err := dst.PutSHA256(ctx, b.Key, r, sum)
		r.Close() // read-only
		if err != nil {
			return st, fmt.Errorf("copy %s: %w", b.Key, err)
		}
		if n != size {
			return st, fmt.Errorf("copy %s: it changed while being copied; run migrate-blobs again", b.Key)
		}
		st.copied++
		st.bytes += n
		fmt.Fprintf(progress, "copied %s (%d bytes)\n", b.Key, n)
	}
	return st, nil
}

// blobSHA256 reads a blob and returns its SHA-256 (hex) and size.
func blobSHA256(ctx context.Context, s bb.BlobStore, key string) (string, int64, error) {
	r, err := s.Open(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
