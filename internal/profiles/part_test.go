package profiles_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/profiles"
)

// partSession returns a session of the env's project on the context.
func partSession(e *testEnv, contextID string, persist bool) *bb.Session {
	return &bb.Session{ID: bb.NewID(), ProjectID: e.p.ID, ContextID: contextID,
		Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: contextID, Persist: persist}}}
}

// TestPartOrdering drives the part as the Manager does and checks its orderings: a
// create on a context waits for the write-backs of that context in flight (from Ending
// to Ended), not for running sessions; an ERROR session never writes back; a stopped
// COMPLETED one does; Ended removes the work dir.
func TestPartOrdering(t *testing.T) {
	e := newEnv(t, nil, profiles.Config{})
	ctx := t.Context()
	c, _, err := e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if run, err := e.svc.Prepare(ctx, &bb.Session{ID: bb.NewID(), ProjectID: e.p.ID}, nil, &bb.LaunchOptions{}); run != nil || err != nil {
		t.Fatalf("Prepare(no context, no extension) = %v, %v; want no run", run, err)
	}
	l := profileLauncher{&chrometest.Launcher{RunDir: t.TempDir()}}
	launch := func(t *testing.T) bb.Browser {
		b, err := l.Launch(ctx, bb.LaunchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close(context.Background()) })
		if err := os.MkdirAll(b.(bb.ProfileBrowser).ProfileDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		return b
	}

	first := partSession(e, c.ID, true)
	run, err := e.svc.Prepare(ctx, first, nil, &bb.LaunchOptions{})
	if err != nil || run == nil {
		t.Fatalf("Prepare = %v, %v", run, err)
	}
	// A running session does not hold up a create on its context.
	if r, err := e.svc.Prepare(ctx, partSession(e, c.ID, false), nil, &bb.LaunchOptions{}); err != nil {
		t.Fatalf("Prepare beside a running session: %v", err)
	} else {
		r.Ended(ctx)
	}

	// An ending one does, until Ended.
	run.Ending(bb.StatusCompleted)
	second := make(chan error, 1)
	go func() {
		r, err := e.svc.Prepare(ctx, partSession(e, c.ID, false), nil, &bb.LaunchOptions{})
		if r != nil {
			r.Ended(context.Background())
		}
		second <- err
	}()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := e.svc.Prepare(short, partSession(e, c.ID, false), nil, &bb.LaunchOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Prepare during a write-back = %v; want it to wait until its ctx is done", err)
	}
	select {
	case err := <-second:
		t.Fatalf("Prepare returned (%v) before the write-back was over", err)
	case <-time.After(50 * time.Millisecond):
	}
	b := launch(t)
	run.Stopped(ctx, b, bb.StatusCompleted)
	if got, err := e.db.Context(ctx, c.ID); err != nil || got.Snapshot == "" {
		t.Errorf("context after Stopped(COMPLETED) = %+v, %v; want a snapshot", got, err)
	}
	run.Ended(ctx)
	if err := <-second; err != nil {
		t.Errorf("Prepare after the write-back: %v", err)
	}
	if entries, _ := os.ReadDir(e.cfg.WorkDir); len(entries) != 0 {
		t.Errorf("work dir after Ended holds %d entries; want none (files are made at launch)", len(entries))
	}
	// A create now starts from the snapshot just written.
	var opts bb.LaunchOptions
	if r, err := e.svc.Prepare(ctx, partSession(e, c.ID, false), nil, &opts); err != nil {
		t.Fatal(err)
	} else {
		r.Ended(ctx)
	}
	if got, _ := e.db.Context(ctx, c.ID); len(opts.Files) != 1 || opts.Files[0].Version != got.Snapshot {
		t.Errorf("Prepare after the write-back gave files %+v; want the snapshot %q", opts.Files, got.Snapshot)
	}

	// ERROR: no write-back.
	before, err := e.db.Context(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	run, err = e.svc.Prepare(ctx, partSession(e, c.ID, true), nil, &bb.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run.Ending(bb.StatusError)
	run.Stopped(ctx, launch(t), bb.StatusError)
	run.Ended(ctx)
	if got, err := e.db.Context(ctx, c.ID); err != nil || got.Snapshot != before.Snapshot {
		t.Errorf("context after Stopped(ERROR) points at %q, %v; want %q as before", got.Snapshot, err, before.Snapshot)
	}

	// A Prepare that fails leaves no files.
	gone := partSession(e, bb.NewID(), true)
	if _, err := e.svc.Prepare(ctx, gone, nil, &bb.LaunchOptions{}); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Prepare(unknown context) = %v; want not found", err)
	}
	if entries, _ := os.ReadDir(e.cfg.WorkDir); len(entries) != 0 {
		t.Errorf("work dir has %d entries; want none", len(entries))
	}
}
