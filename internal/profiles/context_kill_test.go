package profiles_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// Environment of the child process of TestContextWriteBackKilled.
const (
	killChildDir     = "BROWSERD_TEST_KILL_DIR"
	killChildContext = "BROWSERD_TEST_KILL_CONTEXT"
	killChildProject = "BROWSERD_TEST_KILL_PROJECT"
	killChildSite    = "BROWSERD_TEST_KILL_SITE"
)

// TestContextWriteBackKilled kills a server (this test binary, run as a child) with
// SIGKILL in the middle of writing a context back, and checks that the context still
// has its earlier snapshot, whole, and that a restarted Manager cleans up after the
// killed one.
func TestContextWriteBackKilled(t *testing.T) {
	if dir := os.Getenv(killChildDir); dir != "" {
		killChild(t, dir)
		return
	}
	srv := site(t)
	dir := t.TempDir()
	e := newChromeEnv(t, dir, bb.ManagerConfig{})
	c := e.newContext(t)
	s, p := e.start(t, withContext(c.ID, true))
	logIn(t, p, srv.URL, "before")
	e.release(t, s, p)
	before := e.waitSnapshot(t, c.ID, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The child logs in as "after" and is killed while its write-back is half done.
	ready := filepath.Join(dir, "write-started")
	cmd := exec.Command(os.Args[0], "-test.run=^TestContextWriteBackKilled$", "-test.v")
	cmd.Env = append(os.Environ(), killChildDir+"="+dir, killChildContext+"="+c.ID,
		killChildProject+"="+e.project(t).ID, killChildSite+"="+srv.URL)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child did not start its write-back within 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait() // "signal: killed"
	partial, _ := filepath.Glob(filepath.Join(dir, "blobs", ".tmp", "*"))
	if len(partial) == 0 {
		t.Error("no partial blob left by the killed write; the crash did not hit the write")
	}
	if got := e.context(t, c.ID); got.Snapshot != before.Snapshot {
		t.Errorf("after the crash the context points at %q; want the earlier %q", got.Snapshot, before.Snapshot)
	}

	// A restarted Manager reaps the child's leftovers and starts from the earlier state.
	e2 := newChromeEnv(t, dir, bb.ManagerConfig{})
	e2.p = e.p
	if left, _ := filepath.Glob(filepath.Join(dir, "blobs", ".tmp", "*")); len(left) != 0 {
		t.Errorf("partial blobs left after a restart: %q", left)
	}
	s, p = e2.start(t, withContext(c.ID, false))
	if got, want := whoami(t, p, srv.URL), loggedInAs("before"); got != want {
		t.Errorf("after a crash mid-write the context has %q; want the earlier %q", got, want)
	}
	e2.release(t, s, p)
}

// killChild is the child's side: a session that writes "after" back through a blob
// store that stops in the middle of the snapshot and waits to be killed.
func killChild(t *testing.T, dir string) {
	ready := filepath.Join(dir, "write-started")
	e := newChromeEnv(t, dir, bb.ManagerConfig{}, func(b bb.BlobStore) bb.BlobStore {
		return stallingBlobs{BlobStore: b, ready: ready}
	})
	e.p = &bb.Project{ID: os.Getenv(killChildProject)}
	s, p := e.start(t, withContext(os.Getenv(killChildContext), true))
	logIn(t, p, os.Getenv(killChildSite), "after")
	e.release(t, s, p)
	select {} // killed by the parent
}

// stallingBlobs passes the first 16 KiB of a snapshot (about a third of one) to the
// store, then signals and blocks.
type stallingBlobs struct {
	bb.BlobStore
	ready string
}

func (s stallingBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if !strings.HasPrefix(key, "contexts/") {
		return s.BlobStore.Put(ctx, key, r)
	}
	return s.BlobStore.Put(ctx, key, io.MultiReader(io.LimitReader(r, 16<<10), stall{s.ready}))
}

type stall struct{ ready string }

func (s stall) Read([]byte) (int, error) {
	os.WriteFile(s.ready, nil, 0o600)
	select {}
}
