package profiles_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/profiles"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

// On S3, a context write-back that cannot reach S3 fails and leaves the context on its
// previous snapshot, which restores intact once S3 is back; a create on the context
// while S3 is down answers 503 (CodeUnavailable). Real SeaweedFS, stopped and restarted.
func TestWriteBackS3Outage(t *testing.T) {
	srv := s3test.Start(t)
	e := newEnv(t, nil, profiles.Config{Blobs: srv.Store(t, "")})
	ctx := t.Context()
	c, _, err := e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	l := profileLauncher{&chrometest.Launcher{RunDir: t.TempDir()}}
	// writeBack runs a persisting session on the context whose profile holds file=body.
	writeBack := func(body string) {
		t.Helper()
		run, err := e.svc.Prepare(ctx, partSession(e, c.ID, true), nil, &bb.LaunchOptions{})
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		b, err := l.Launch(ctx, bb.LaunchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		dir := b.(bb.ProfileBrowser).ProfileDir()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "file"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		run.Ending(bb.StatusCompleted)
		run.Stopped(ctx, b, bb.StatusCompleted)
		run.Ended(ctx)
	}
	writeBack("version 1")
	v1, err := e.db.Context(ctx, c.ID)
	if err != nil || v1.Snapshot == "" {
		t.Fatalf("context after the first write-back = %+v, %v", v1, err)
	}

	srv.Kill()
	writeBack("version 2") // S3 is down: the write-back fails
	if got, err := e.db.Context(ctx, c.ID); err != nil || got.Snapshot != v1.Snapshot || got.SnapshotSize != v1.SnapshotSize {
		t.Errorf("context after a write-back S3 refused = %+v, %v; want the version 1 pointer %q", got, err, v1.Snapshot)
	}
	// restore prepares a session on the context and lays out its profile, as a launch does.
	restore := func() (string, error) {
		var opts bb.LaunchOptions
		run, err := e.svc.Prepare(ctx, partSession(e, c.ID, false), nil, &opts)
		if err != nil {
			return "", err
		}
		t.Cleanup(func() { run.Ended(context.Background()) })
		if len(opts.Files) != 1 || opts.Files[0].Version != v1.Snapshot {
			t.Fatalf("launch files %+v; want version 1 (%s)", opts.Files, v1.Snapshot)
		}
		made, cleanup, err := opts.Files[0].Make(ctx)
		if cleanup != nil {
			t.Cleanup(cleanup)
		}
		return made.Profile, err
	}
	if _, err := restore(); bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("restoring the context with S3 down = %v; want CodeUnavailable (503)", err)
	}

	srv.Restart()
	profile, err := restore()
	if err != nil {
		t.Fatalf("restoring the context after S3 is back: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(profile, "file"))
	if err != nil || string(got) != "version 1" {
		t.Errorf("restored profile file = %q, %v; want version 1", got, err)
	}
}
