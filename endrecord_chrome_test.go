package browserd_test

import (
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"path/filepath"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestReleaseBusyStoreStopsBrowser: with SQLite's write lock held by another process, a
// released session's real browser stops within seconds, not after one more store write
// (the final usage sample) waits out the busy timeout (10 s) first. The reliability run
// (docs/RELIABILITY.md) saw five releases under a held lock keep browsers, and a create
// queued behind those writes, for up to 47 s.
func TestReleaseBusyStoreStopsBrowser(t *testing.T) {
	e := newChromeEnv(t, "", bb.ManagerConfig{StoreTimeout: 500 * time.Millisecond})
	s, err := e.m.CreateSession(t.Context(), e.project(t).ID, bb.CreateSessionRequest{KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(chrometest.Processes(t, e.runDir)) == 0 {
		t.Fatal("no browser process found for the session")
	}

	unlock := sqlitetest.LockWrites(t, filepath.Join(e.dir, "browserd.db"))

	_, err = e.m.ReleaseSession(t.Context(), e.project(t).ID, s.ID)
	wantNotRecorded(t, err)
	released := time.Now()
	for len(chrometest.Processes(t, e.runDir)) > 0 {
		if time.Since(released) > 4*time.Second {
			t.Fatalf("the browser still runs %v after the release with the store locked; want it stopped at once", time.Since(released).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("browser stopped %v after the release answered", time.Since(released).Round(time.Millisecond))

	unlock()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := e.db.Session(t.Context(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == bb.StatusCompleted && !got.EndedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s is %s 15 s after the lock went; want COMPLETED", s.ID, got.Status)
		}
	}
}
