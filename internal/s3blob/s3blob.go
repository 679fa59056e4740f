package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	bb "github.com/browserd/browserd"
)

// DefaultPartSize is Config.PartSize when zero: the most a Put holds in memory, and the
// size of each part of a multipart upload (S3's minimum part is 5 MiB; 10,000 parts of
// 8 MiB make objects up to 80 GiB).
const DefaultPartSize = 8 << 20

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// Config configures a Store.
type Config struct {
	Location
	// AccessKey, SecretKey and SessionToken are the S3 credentials (the server reads
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN). Required, but
	// SessionToken.
	AccessKey, SecretKey, SessionToken string
	// PartSize is the multipart part size and the memory each Put holds
	// [DefaultPartSize]; at least 5 MiB.
	PartSize int64
	// Retries is how many times the client retries a failed request itself [1]; the
	// spool (internal/blobspool) retries writes for longer.
	Retries int
	// Transport is the HTTP transport [a clone of http.DefaultTransport].
	Transport http.RoundTripper
}

// Store keeps each blob as the object Prefix+key. It is safe for concurrent use.
type Store struct {
	loc      Location
	core     minio.Core
	partSize int64
}

var _ bb.BlobStore = (*Store)(nil)

// Open connects to the bucket, creating it when it is missing, and returns a Store. It
// fails with an error that says why when the service cannot be reached, the
// credentials are refused or the bucket cannot be created.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3blob: a bucket is required")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3blob: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the S3 blob store")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("s3blob: part size %d is below S3's minimum of 5 MiB", cfg.PartSize)
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 1
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
		if cfg.Region != "us-east-1" {
			endpoint = "s3." + cfg.Region + ".amazonaws.com"
		}
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle() {
		lookup = minio.BucketLookupPath
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   cfg.Retries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	s := &Store{loc: cfg.Location, core: minio.Core{Client: client}, partSize: cfg.PartSize}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Location returns where the store keeps its objects (no credentials).
func (s *Store) Location() Location { return s.loc }

// ensureBucket creates the bucket when it is missing.
func (s *Store) ensureBucket(ctx context.Context) error {
	where := fmt.Sprintf("bucket %q at %s", s.loc.Bucket, s.endpointName())
	ok, err := s.core.BucketExists(ctx, s.loc.Bucket)
	if err != nil {
		return fmt.Errorf("s3blob: check %s: %w", where, explain(err))
	}
	if ok {
		return nil
	}
	err = s.core.MakeBucket(ctx, s.loc.Bucket, minio.MakeBucketOptions{Region: s.loc.Region})
	if code := minio.ToErrorResponse(err).Code; err != nil && (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") {
		// Created meanwhile (another node starting), or taken by someone else: ask again.
		if ok, err2 := s.core.BucketExists(ctx, s.loc.Bucket); err2 == nil && ok {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("s3blob: %s does not exist and cannot be created: %w", where, explain(err))
	}
	return nil
}

func (s *Store) endpointName() string {
	if s.loc.Endpoint == "" {
		return "AWS S3"
	}
	return s.loc.Endpoint
}

// explain adds what an operator should check to a start-up error.
func explain(err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("the credentials were refused (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the identity's permissions): %w", err)
	case resp.Code == "" && resp.StatusCode == 0:
		return fmt.Errorf("the S3 service cannot be reached (check the endpoint and that it runs): %w", err)
	}
	return err
}

func (s *Store) object(key string) (string, error) {
	if !bb.ValidBlobKey(key) {
		return "", bb.Errorf(bb.CodeInvalid, "invalid blob key %q", key)
	}
	if len(s.loc.Prefix)+len(key) > maxObjectName {
		return "", bb.Errorf(bb.CodeInvalid, "blob key %q is too long for S3 with the prefix %q", key, s.loc.Prefix)
	}
	return s.loc.Prefix + key, nil
}

// maxObjectName is the longest object name S3 takes, in bytes.
const maxObjectName = 1024

// classify turns an S3 error into a bb error: a missing object is CodeNotFound, an
// unreachable service, a 5xx or a throttle is CodeUnavailable (the API answers 503 and
// asks to retry), and anything else stays internal.
func classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return bb.Errorf(bb.CodeNotFound, "blob %q not found", key)
	case resp.StatusCode == 0 && resp.Code == "", resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests,
		resp.Code == "SlowDown", resp.Code == "NoSuchBucket":
		return &bb.Error{Code: bb.CodeUnavailable, Retry: true,
			Message: "the blob store (S3) is unavailable; retry shortly", Err: fmt.Errorf("s3 %s %s: %w", op, key, err)}
	}
	return fmt.Errorf("s3 %s %s: %w", op, key, err)
}

// Put stores r under key. Up to PartSize bytes go in one PUT; a larger object streams
// as a multipart upload of PartSize parts, completed only when r ended without error:
// S3 replaces an object atomically, so readers see the old bytes or the new ones. A
// failed Put aborts its upload and leaves the old object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return s.put(ctx, key, r, nil)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, meta map[string]string) (int64, error) {
	obj, err := s.object(key)
	if err != nil {
		return 0, err
	}
	buf, eof, err := readPart(ctx, r, s.partSize, nil)
	if err != nil {
		return 0, fmt.Errorf("s3 put %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", UserMetadata: meta}
	if eof {
		_, err := s.core.PutObject(ctx, s.loc.Bucket, obj, bytes.NewReader(buf), int64(len(buf)), "", "", opts)
		if err != nil {
			return 0, classify("put", key, err)
		}
		return int64(len(buf)), nil
	}
	return s.putMultipart(ctx, key, obj, r, buf, opts)
}

func (s *Store) putMultipart(ctx context.Context, key, obj string, r io.Reader, buf []byte, opts minio.PutObjectOptions) (n int64, err error) {
	id, err := s.core.NewMultipartUpload(ctx, s.loc.Bucket, obj, opts)
	if err != nil {
		return 0, classify("put", key, err)
	}
	defer func() {
		if err != nil { // best effort: a bucket lifecycle rule cleans up what this misses
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = s.core.AbortMultipartUpload(actx, s.loc.Bucket, obj, id)
			cancel()
		}
	}()
	var parts []minio.CompletePart
	for eof := false; ; {
		p, err := s.core.PutObjectPart(ctx, s.loc.Bucket, obj, id, len(parts)+1, bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{})
		if err != nil {
			return 0, classify("put", key, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		n += int64(len(buf))
		if eof {
			break
		}
		if len(parts) == 10000 {
			return 0, bb.Errorf(bb.CodeTooLarge, "blob %q is larger than S3 takes in 10000 parts of %d bytes", key, s.partSize)
		}
		if buf, eof, err = readPart(ctx, r, s.partSize, buf); err != nil {
			return 0, fmt.Errorf("s3 put %s: %w", key, err)
		}
		if len(buf) == 0 { // r ended exactly at a part boundary
			break
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.loc.Bucket, obj, id, parts, opts); err != nil {
		return 0, classify("put", key, err)
	}
	return n, nil
}

// readPart reads up to size bytes of r into buf (reused when it is large enough) and
// reports whether r ended. Small objects take a small buffer: it grows as bytes come.
func readPart(ctx context.Context, r io.Reader, size int64, buf []byte) ([]byte, bool, error) {
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(size, 64<<10))
	}
	for int64(len(buf)) < size {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(size, int64(2*cap(buf))))-len(buf))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), int(size))])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, true, nil
		} else if err != nil {
			return nil, false, err
		}
	}
	return buf, false, nil
}

// Open returns the object's bytes as they stream from S3.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	rc, _, _, err := s.core.GetObject(ctx, s.loc.Bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, classify("get", key, err)
	}
	return rc, nil
}

// checkPrefix accepts "" and prefixes whose directory part is a valid key, as fsblob.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	dir := prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	} else {
		dir = ""
	}
	if (dir != "" && !bb.ValidBlobKey(dir)) || strings.ContainsAny(prefix, "\\\x00") || prefix[0] == '/' {
		return bb.Errorf(bb.CodeInvalid, "invalid blob prefix %q", prefix)
	}
	return nil
}

// List lists the objects under Prefix+prefix; S3 returns keys in byte order.
func (s *Store) List(ctx context.Context, prefix string) ([]bb.BlobInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine on an early return
	var out []bb.BlobInfo
	for o := range s.core.Client.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: s.loc.Prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, classify("list", prefix, o.Err)
		}
		key := strings.TrimPrefix(o.Key, s.loc.Prefix)
		if !bb.ValidBlobKey(key) {
			continue // not written through a Store ("a//b", a directory marker)
		}
		out = append(out, bb.BlobInfo{Key: key, Size: o.Size, ModTime: o.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b bb.BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// DeletePrefix deletes every object under Prefix+prefix, in batches of up to 1000.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	dir, ok := strings.CutSuffix(prefix, "/")
	if !ok || !bb.ValidBlobKey(dir) {
		return bb.Errorf(bb.CodeInvalid, "blob prefix %q must be a directory ending in /", prefix)
	}
	blobs, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	if len(blobs) == 0 {
		return nil
	}
	ch := make(chan minio.ObjectInfo)
	go func() { // ends when every key is sent or ctx is done; RemoveObjects drains ch
		defer close(ch)
		for _, b := range blobs {
			select {
			case ch <- minio.ObjectInfo{Key: s.loc.Prefix + b.Key}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for e := range s.core.RemoveObjects(ctx, s.loc.Bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && minio.ToErrorResponse(e.Err).Code != "NoSuchKey" {
			errs = append(errs, classify("delete", e.ObjectName, e.Err))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Ping checks that the bucket answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.loc.Bucket)
	if err != nil {
		return classify("ping", s.loc.Bucket, err)
	}
	if !ok {
		return fmt.Errorf("bucket %q is gone", s.loc.Bucket)
	}
	return nil
}

// metaSHA256 is the user metadata that PutSHA256 stores: the object's SHA-256 (hex).
const metaSHA256 = "Browserd-Sha256"

// PutSHA256 is Put that also records the bytes' SHA-256 (hex, computed by the caller)
// with the object, for Stat to compare: `browserd admin migrate-blobs` skips what is
// there already with it.
func (s *Store) PutSHA256(ctx context.Context, key string, r io.Reader, sha256 string) (int64, error) {
	return s.put(ctx, key, r, map[string]string{metaSHA256: sha256})
}

// Stat returns an object's size and the SHA-256 PutSHA256 recorded ("" for objects
// stored otherwise), or a CodeNotFound error.
func (s *Store) Stat(ctx context.Context, key string) (size int64, sha256 string, err error) {
	obj, err := s.object(key)
	if err != nil {
		return 0, "", err
	}
	info, err := s.core.StatObject(ctx, s.loc.Bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		return 0, "", classify("stat", key, err)
	}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"), metaSHA256) {
			sha256 = v
		}
	}
	return info.Size, sha256, nil
}
