package s3blob_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/blobtest"
	"github.com/browserd/browserd/internal/s3blob"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

// TestContract runs the blob contract suite on a real S3 server, with the store's
// objects under a prefix and without.
func TestContract(t *testing.T) {
	srv := s3test.Start(t)
	for _, prefix := range []string{"", "browserd/node-1"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) bb.BlobStore { return srv.Store(t, prefix) }, blobtest.Options{})
		})
	}
}

// Two stores on one bucket with different prefixes see only their own blobs.
func TestPrefixIsolation(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	loc, err := s3blob.ParseURL("s3://shared/one?endpoint=" + srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s3blob.Config{Location: loc, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	one, err := s3blob.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = "two/"
	two, err := s3blob.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Put(t, one, "k/a", "one")
	blobtest.Put(t, two, "k/a", "two")
	if got := blobtest.Read(t, one, "k/a"); got != "one" {
		t.Errorf("one = %q", got)
	}
	if err := two.DeletePrefix(ctx, "k/"); err != nil {
		t.Fatal(err)
	}
	if got := blobtest.Read(t, one, "k/a"); got != "one" {
		t.Errorf("one after two's delete = %q", got)
	}
	if list, _ := one.List(ctx, ""); len(list) != 1 {
		t.Errorf("one lists %v", blobtest.Keys(list))
	}
}

// Open creates a missing bucket, and says why when it cannot reach or use one.
func TestOpenErrors(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	loc, _ := s3blob.ParseURL("s3://created-at-start?endpoint=" + srv.Endpoint)
	if _, err := s3blob.Open(ctx, s3blob.Config{Location: loc, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}); err != nil {
		t.Fatalf("Open with a missing bucket: %v", err)
	}
	if _, err := s3blob.Open(ctx, s3blob.Config{Location: loc, AccessKey: srv.AccessKey, SecretKey: "wrong"}); err == nil ||
		!strings.Contains(err.Error(), "credentials were refused") {
		t.Errorf("Open with a wrong secret = %v; want a credentials error", err)
	}
	if _, err := s3blob.Open(ctx, s3blob.Config{Location: loc}); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials = %v", err)
	}
	dead, _ := s3blob.ParseURL("s3://bucket?endpoint=http://127.0.0.1:1")
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s3blob.Open(tctx, s3blob.Config{Location: dead, AccessKey: "a", SecretKey: "b"}); err == nil ||
		!strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("Open of a closed port = %v; want 'cannot be reached'", err)
	}
}

// With the server gone, every call is CodeUnavailable (503 with retry), and works
// again once it is back.
func TestUnavailable(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	st := srv.Store(t, "")
	blobtest.Put(t, st, "k/a", "a")
	srv.Kill()
	if err := st.Ping(ctx); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("Ping = %v; want CodeUnavailable", err)
	}
	_, err := st.Open(ctx, "k/a")
	if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) {
		t.Errorf("Open = %v; want CodeUnavailable asking to retry", err)
	}
	if _, err := st.Put(ctx, "k/b", strings.NewReader("b")); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("Put = %v; want CodeUnavailable", err)
	}
	if _, err := st.List(ctx, "k/"); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("List = %v; want CodeUnavailable", err)
	}
	if err := st.DeletePrefix(ctx, "k/"); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("DeletePrefix = %v; want CodeUnavailable", err)
	}
	srv.Restart()
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}
	if got := blobtest.Read(t, st, "k/a"); got != "a" {
		t.Errorf("after restart = %q", got)
	}
	var e *bb.Error
	if errors.As(err, &e) && strings.Contains(e.Message, srv.SecretKey) {
		t.Error("an error message shows the secret key")
	}
}
