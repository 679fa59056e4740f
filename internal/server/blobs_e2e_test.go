package server

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/blobtest"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/s3blob"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

func TestBlobStoreFlag(t *testing.T) {
	none := func(string) string { return "" }
	for _, bad := range []string{"/var/lib/blobs", "s3://Bad", "s3://bucket?endpoint=ftp://x", "s3://bucket?foo=1", "s3://k:s@bucket"} {
		c := DefaultConfig()
		err := c.Load([]string{"--blob-store", bad}, none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "blob-store") {
			t.Errorf("--blob-store %q: %v; want an error naming blob-store", bad, err)
		}
	}
	env := map[string]string{"BROWSERD_BLOB_STORE": "s3://bucket/p?endpoint=http://127.0.0.1:9000",
		"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_SESSION_TOKEN": "tok"}
	c := DefaultConfig()
	var help bytes.Buffer
	if err := c.Load(nil, func(k string) string { return env[k] }, &help); err != nil {
		t.Fatal(err)
	}
	if c.BlobStore != env["BROWSERD_BLOB_STORE"] || c.BlobCredentials != (BlobCredentials{"ak", "sk", "tok"}) {
		t.Errorf("config = %q %+v", c.BlobStore, c.BlobCredentials)
	}
	if c := DefaultConfig(); c.BlobStore != "" {
		t.Errorf("default blob store = %q; want the data dir", c.BlobStore)
	}
}

// s3Env is the environment of a server with testAPIKey, the metrics token and srv's
// credentials.
func s3Env(srv *s3test.Server) map[string]string {
	env := defaultEnv()
	env["BROWSERD_METRICS_TOKEN"] = testMetricsToken
	maps.Copy(env, srv.Env())
	return env
}

// bucketStore opens the blob store of url on srv directly, as the test's view of S3.
func bucketStore(t *testing.T, srv *s3test.Server, url string) *s3blob.Store {
	t.Helper()
	loc, err := s3blob.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3blob.Open(t.Context(), s3blob.Config{Location: loc, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestArtifactsEndToEndS3 is TestArtifactsEndToEnd with --blob-store on a real S3
// server (SeaweedFS): upload, download, logs and recording, then the objects in S3.
func TestArtifactsEndToEndS3(t *testing.T) {
	srv := s3test.Start(t)
	url := srv.URL("browserd-artifacts")
	id := artifactsEndToEnd(t, s3Env(srv), "--blob-store", url)
	list, err := bucketStore(t, srv, url).List(t.Context(), "sessions/"+id+"/")
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Join(blobtest.Keys(list), " ")
	for _, want := range []string{"/uploads/hello.txt", "/downloads/report-", "/recording/"} {
		if !strings.Contains(keys, want) {
			t.Errorf("S3 holds %s; want a key with %s", keys, want)
		}
	}
}

// With S3 down, /readyz says so (without secrets), uploads still succeed (spooled),
// reads of what only S3 has answer 503 asking to retry; once S3 is back, everything
// spooled reaches it. A server that cannot reach S3 at start fails, saying why.
func TestServeS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	url := srv.URL("browserd-outage")
	app := startServer(t, t.TempDir(), s3Env(srv), "--blob-store", url)
	code, r := readyz(t, app.URL, testMetricsToken)
	if c := r.Checks["blobs"]; code != http.StatusOK || !c.OK || !strings.HasPrefix(c.Detail, "s3: bucket browserd-outage") {
		t.Errorf("/readyz = %d %+v; want ready with an s3 blobs check", code, r.Checks["blobs"])
	}
	sess := app.create(t, testAPIKey, nil)
	if code, body := upload(t, app.URL, testAPIKey, sess.ID, "a.txt", "before"); code != 200 {
		t.Fatalf("upload = %d %s", code, body)
	}

	srv.Kill()
	code, r = readyz(t, app.URL, testMetricsToken)
	if c := r.Checks["blobs"]; code != http.StatusServiceUnavailable || c.OK {
		t.Errorf("/readyz with S3 down = %d %+v; want 503 and the blobs check failing", code, c)
	}
	if strings.Contains(r.Checks["blobs"].Detail, srv.SecretKey) || strings.Contains(r.Checks["blobs"].Detail, srv.AccessKey) {
		t.Errorf("/readyz shows S3 credentials: %s", r.Checks["blobs"].Detail)
	}
	if code, body := upload(t, app.URL, testAPIKey, sess.ID, "b.txt", "during the outage"); code != 200 {
		t.Errorf("upload with S3 down = %d %s; want 200 (spooled)", code, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", app.URL+"/v1/sessions/"+sess.ID+"/downloads", nil)
	req.Header.Set("X-BB-API-Key", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-should-retry") != "true" {
		t.Errorf("downloads with S3 down = %d (x-should-retry %q); want 503 asking to retry", resp.StatusCode, resp.Header.Get("x-should-retry"))
	}

	srv.Restart()
	poll(t, "/readyz after S3 is back", func() bool {
		code, _ := readyz(t, app.URL, testMetricsToken)
		return code == http.StatusOK
	})
	app.release(t, testAPIKey, sess.ID)
	app.stop(t) // flushes the spool
	st := bucketStore(t, srv, url)
	for key, want := range map[string]string{"uploads/a.txt": "before", "uploads/b.txt": "during the outage"} {
		if got := blobtest.Read(t, st, "sessions/"+sess.ID+"/"+key); got != want {
			t.Errorf("S3 %s = %q; want %q", key, got, want)
		}
	}

	// S3 unreachable at start: a clear error.
	srv.Kill()
	m := NewMain("test")
	env := s3Env(srv)
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--pool-size", "0", "--blob-store", url},
		func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	err = m.Open(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("Open with S3 down succeeded")
	}
	if !strings.Contains(err.Error(), "cannot be reached") || strings.Contains(err.Error(), srv.SecretKey) {
		t.Errorf("Open with S3 down: %v; want 'cannot be reached' and no secret", err)
	}
}

// migrate-blobs copies a data dir's blobs to S3, and copies again only what changed.
func TestMigrateBlobs(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	dataDir := t.TempDir()
	src, err := fsblob.New(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB: a multipart upload
	blobs := map[string]string{"sessions/a/recording/0000000000.json": "[]", "sessions/a/downloads/f-1": "file",
		"contexts/c/v/snapshot": big, "extensions/e/extension.zip": "zip"}
	for k, v := range blobs {
		blobtest.Put(t, src, k, v)
	}
	url := "s3://migrated/node?endpoint=" + srv.Endpoint
	env := srv.Env()
	migrate := func() string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := Admin(ctx, []string{"migrate-blobs", "--from", dataDir, "--to", url}, func(k string) string { return env[k] }, &out, &errs); err != nil {
			t.Fatalf("migrate-blobs: %v\n%s", err, errs.String())
		}
		return out.String()
	}
	if got := migrate(); !strings.HasPrefix(got, "copied 4 blobs") || !strings.Contains(got, "skipped 0") {
		t.Errorf("first migrate-blobs = %q", got)
	}
	dst := bucketStore(t, srv, url)
	for k, v := range blobs {
		if got := blobtest.Read(t, dst, k); got != v {
			t.Errorf("S3 %s: %d bytes; want %d", k, len(got), len(v))
		}
	}
	if got := migrate(); !strings.HasPrefix(got, "copied 0 blobs") || !strings.Contains(got, "skipped 4") {
		t.Errorf("second migrate-blobs = %q; want everything skipped", got)
	}
	blobtest.Put(t, src, "sessions/a/downloads/f-1", "FILE")  // same size, new bytes
	blobtest.Put(t, dst, "extensions/e/extension.zip", "zip") // same bytes, stored without a checksum
	if got := migrate(); !strings.HasPrefix(got, "copied 2 blobs") || !strings.Contains(got, "skipped 2") {
		t.Errorf("migrate-blobs after changes = %q; want 2 copied", got)
	}
	if got := blobtest.Read(t, dst, "sessions/a/downloads/f-1"); got != "FILE" {
		t.Errorf("changed blob in S3 = %q", got)
	}
	var out, errs bytes.Buffer
	if err := Admin(ctx, []string{"migrate-blobs", "--from", dataDir, "--to", "s3://Bad"}, func(string) string { return "" }, &out, &errs); err == nil || !strings.Contains(err.Error(), "bucket") {
		t.Errorf("migrate-blobs --to s3://Bad = %v", err)
	}
	if err := Admin(ctx, []string{"migrate-blobs", "--to", url}, func(string) string { return "" }, &out, &errs); err == nil {
		t.Error("migrate-blobs without --from succeeded")
	}
}
