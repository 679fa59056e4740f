package blobspool_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/blobspool"
	"github.com/browserd/browserd/internal/blobtest"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

func newSpool(t *testing.T, dir string, remote bb.BlobStore) *blobspool.Spool {
	t.Helper()
	s, err := blobspool.New(blobspool.Config{Dir: dir, Remote: remote, MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the blob contract suite on a spool in front of the local disk and
// in front of a real S3 server.
func TestContract(t *testing.T) {
	t.Run("fsblob", func(t *testing.T) {
		blobtest.Run(t, func(t *testing.T) bb.BlobStore {
			remote, err := fsblob.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return newSpool(t, t.TempDir(), remote)
		}, blobtest.Options{})
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		blobtest.Run(t, func(t *testing.T) bb.BlobStore { return newSpool(t, t.TempDir(), srv.Store(t, "")) }, blobtest.Options{})
	})
}

// flush waits for the spool to upload everything.
func flush(t *testing.T, s *blobspool.Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// With S3 down, writes land in the spool and read back from it; they survive a restart
// of the server (a new Spool on the same directory) and reach S3, in order, once it is
// back. Reads of what only S3 has answer CodeUnavailable meanwhile.
func TestS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	remote := srv.Store(t, "node")
	dir := t.TempDir()
	sp := newSpool(t, dir, remote)
	// A key S3 refuses for good (too long with the store's prefix) is kept aside and
	// does not hold up the writes after it.
	long := "k/" + strings.Repeat("x", 1020)
	blobtest.Put(t, sp, long, "refused")
	blobtest.Put(t, sp, "sessions/old/recording/0", "before the outage")
	blobtest.Put(t, sp, "sessions/gone/x", "deleted during the outage")
	flush(t, sp)
	if refused, _ := filepath.Glob(filepath.Join(dir, "*.refused")); len(refused) != 1 {
		t.Errorf("refused spool files: %v; want the long key's", refused)
	}
	for _, f := range must(filepath.Glob(filepath.Join(dir, "*.refused"))) {
		os.Remove(f) // the test's own check of the directory below
	}

	srv.Kill()
	blobtest.Put(t, sp, "sessions/a/recording/0", "chunk 0")
	blobtest.Put(t, sp, "sessions/a/downloads/f", "first")
	blobtest.Put(t, sp, "sessions/a/downloads/f", "second")
	big := strings.Repeat("z", 12<<20) // a multipart upload once S3 is back
	blobtest.Put(t, sp, "sessions/a/downloads/big", big)
	if err := sp.DeletePrefix(ctx, "sessions/gone/"); err != nil {
		t.Fatalf("DeletePrefix during the outage: %v", err)
	}
	if got := blobtest.Read(t, sp, "sessions/a/downloads/f"); got != "second" {
		t.Errorf("spooled read = %q", got)
	}
	if _, err := sp.Open(ctx, "sessions/gone/x"); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Open of a blob deleted in the spool = %v; want CodeNotFound", err)
	}
	if _, err := sp.Open(ctx, "sessions/old/recording/0"); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("Open of a blob only S3 has, S3 down = %v; want CodeUnavailable", err)
	}
	if _, err := sp.List(ctx, "sessions/a/"); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("List with S3 down = %v; want CodeUnavailable", err)
	}
	time.Sleep(500 * time.Millisecond) // a few retries
	if n, err := sp.Pending(); n != 5 || err == nil {
		t.Errorf("Pending = %d, %v; want 5 writes and the last upload error", n, err)
	}

	// The server restarts while S3 is still down: the spool is loaded again.
	sp.Close()
	sp = newSpool(t, dir, remote)
	if got := blobtest.Read(t, sp, "sessions/a/downloads/big"); got != big {
		t.Errorf("big blob after a restart: %d bytes", len(got))
	}

	srv.Restart()
	flush(t, sp)
	want := map[string]string{
		"sessions/a/downloads/big": big, "sessions/a/downloads/f": "second",
		"sessions/a/recording/0": "chunk 0", "sessions/old/recording/0": "before the outage",
	}
	list, err := remote.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Errorf("S3 has %q; want %d blobs", blobtest.Keys(list), len(want))
	}
	for k, v := range want {
		if got := blobtest.Read(t, remote, k); got != v {
			t.Errorf("S3 %s = %.20q (%d bytes); want %.20q", k, got, len(got), v)
		}
	}
	if n, err := sp.Pending(); n != 0 || err != nil {
		t.Errorf("Pending after the flush = %d, %v", n, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 1 || filepath.Base(left[0]) != "tmp" {
		t.Errorf("spool dir after the flush: %v", left)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A spool file that is not one (cut short, foreign) is kept aside, not uploaded.
func TestCorruptEntry(t *testing.T) {
	remote, err := fsblob.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000007.put"), []byte("BD"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := newSpool(t, dir, remote)
	blobtest.Put(t, sp, "k/v", "v")
	flush(t, sp)
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000007.put.corrupt")); err != nil {
		t.Errorf("corrupt entry not kept aside: %v", err)
	}
	if got := blobtest.Read(t, remote, "k/v"); got != "v" {
		t.Errorf("remote k/v = %q", got)
	}
}
