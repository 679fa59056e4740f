package browserd_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// faultStore is a real store whose session updates fail while failing is set, as a
// full disk makes SQLite's commits fail ("database or disk is full").
type faultStore struct {
	bb.Store
	failing atomic.Bool
}

var errDiskFull = errors.New("commit: database or disk is full (13)")

func (f *faultStore) UpdateSession(ctx context.Context, id string, fn func(*bb.Session) error) (*bb.Session, error) {
	if f.failing.Load() {
		return nil, errDiskFull
	}
	return f.Store.UpdateSession(ctx, id, fn)
}

// newFaultEnv is newEnv on a faultStore.
func newFaultEnv(t *testing.T, cfg bb.ManagerConfig) (*testEnv, *faultStore) {
	t.Helper()
	db := sqlitetest.Open(t)
	p, key := sqlitetest.Project(t, db, 2)
	l := &chrometest.Launcher{}
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultStore{Store: db}
	cfg.Store, cfg.Launcher, cfg.Signer = fs, l, signer
	m, err := bb.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := l.Live(); n != 0 {
			t.Errorf("%d browsers still running after Close", n)
		}
	})
	return &testEnv{db: db, l: l, m: m, p: p, key: key, signer: signer}, fs
}

// wantNotRecorded checks that err is the 503 of a release whose end is not recorded.
func wantNotRecorded(t *testing.T, err error) {
	t.Helper()
	if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) || !errors.Is(err, bb.ErrEndNotRecorded) {
		t.Fatalf("release = %v (code %s, retry %v); want CodeUnavailable, retry, ErrEndNotRecorded", err, bb.CodeOf(err), bb.RetryOf(err))
	}
}

// TestEndRetriedUntilRecorded is security-review F7, reproduction B (disk full): a
// release whose end the store refuses answers 503 (retry), the browser stops at once,
// and the end is written, with its own end time, as soon as the store takes it again.
func TestEndRetriedUntilRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := newFaultEnv(t, bb.ManagerConfig{})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		a := e.attach(t, s.ID)

		fs.failing.Store(true)
		endedAt := time.Now()
		_, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		wantNotRecorded(t, err)
		select {
		case <-a.Ended():
		default:
			t.Error("the client was not told the session ended")
		}
		synctest.Wait()
		if n := e.l.Live(); n != 0 {
			t.Errorf("%d browsers running after the release; the browser must stop at once", n)
		}
		e.wantStatus(t, s.ID, bb.StatusRunning)
		if n := e.m.PendingEnds(); n != 1 {
			t.Errorf("PendingEnds = %d; want 1", n)
		}

		// A second release while the store still refuses: 503 again.
		time.Sleep(30 * time.Second)
		_, err = e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		wantNotRecorded(t, err)

		// The store recovers: the next retry (backoff ≤ 1 minute) records the end.
		fs.failing.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		e.wantEnded(t, s.ID, bb.StatusCompleted, endedAt, "released")
		if n := e.m.PendingEnds(); n != 0 {
			t.Errorf("PendingEnds = %d after the store recovered; want 0", n)
		}
		got, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		if err != nil || got.Status != bb.StatusCompleted || !got.EndedAt.Equal(endedAt) {
			t.Errorf("release after recovery = %+v, %v; want COMPLETED ended at %v", got, err, endedAt)
		}
	})
}

// TestEndNotRecordedTimeout: a session that times out while the store refuses writes
// ends with TIMED_OUT once it takes them again; a release meanwhile answers 503.
func TestEndNotRecordedTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := newFaultEnv(t, bb.ManagerConfig{SweepInterval: -1})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true, Timeout: 60})
		fs.failing.Store(true)
		time.Sleep(61 * time.Second)
		synctest.Wait()
		if n := e.l.Live(); n != 0 {
			t.Errorf("%d browsers running after the timeout", n)
		}
		_, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		wantNotRecorded(t, err)
		fs.failing.Store(false)
		if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
			t.Fatalf("release once the store works: %v", err)
		}
		e.wantEnded(t, s.ID, bb.StatusTimedOut, s.ExpiresAt, "timeout")
		synctest.Wait()
		if n := e.m.PendingEnds(); n != 0 {
			t.Errorf("PendingEnds = %d; want 0", n)
		}
	})
}

// TestCloseWithPendingEnd: Close does not wait forever for a store that refuses writes;
// the next start's Reconcile ends the session.
func TestCloseWithPendingEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := newFaultEnv(t, bb.ManagerConfig{})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		fs.failing.Store(true)
		_, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		wantNotRecorded(t, err)
		if err := e.m.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		e.wantStatus(t, s.ID, bb.StatusRunning)
		fs.failing.Store(false)
		next, err := bb.NewManager(bb.ManagerConfig{Store: e.db, Launcher: &chrometest.Launcher{}, Signer: e.signer, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := next.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.wantStatus(t, s.ID, bb.StatusError)
		if err := next.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSweep: sessions the store has as live on this node without a browser (an end
// record lost, a bug) are ended as ERROR by the sweep; a session still being created is
// left alone.
func TestSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{}
		e := newEnv(t, 10, l, bb.ManagerConfig{NodeID: "node-a", SweepInterval: 20 * time.Second})
		if err := e.m.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		running := e.create(t, bb.CreateSessionRequest{KeepAlive: true})

		// A session the store says runs here, with no browser behind it.
		now := time.Now().UTC().Truncate(time.Millisecond)
		orphan := &bb.Session{ID: bb.NewID(), ProjectID: e.p.ID, Status: bb.StatusRunning, CreatedAt: now, UpdatedAt: now,
			StartedAt: now, ExpiresAt: now.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600, NodeID: "node-a"}
		elsewhere := &bb.Session{ID: bb.NewID(), ProjectID: e.p.ID, Status: bb.StatusRunning, CreatedAt: now, UpdatedAt: now,
			StartedAt: now, ExpiresAt: now.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600, NodeID: "node-b"}
		for _, s := range []*bb.Session{orphan, elsewhere} {
			if err := e.db.CreateSession(t.Context(), s, 10); err != nil {
				t.Fatal(err)
			}
		}
		// A create whose browser takes longer than a sweep interval to get ready.
		l.ReadyDelay = 25 * time.Second
		slow := e.createAsync(t.Context(), bb.CreateSessionRequest{KeepAlive: true})

		time.Sleep(21 * time.Second)
		synctest.Wait()
		e.wantEnded(t, orphan.ID, bb.StatusError, now.Add(20*time.Second), "browser was lost")
		e.wantStatus(t, elsewhere.ID, bb.StatusRunning) // another node's
		e.wantStatus(t, running.ID, bb.StatusRunning)

		r := <-slow
		if r.err != nil {
			t.Fatalf("slow create across a sweep: %v", r.err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		e.wantStatus(t, r.s.ID, bb.StatusRunning)
		e.wantStatus(t, running.ID, bb.StatusRunning)
	})
}

// TestReleaseBusyStore is security-review F7, reproduction A, on real SQLite: another
// connection holds the write lock (BEGIN IMMEDIATE) longer than the Manager waits for a
// store write. The release answers 503 instead of 200 RUNNING; once the lock goes, the
// end is recorded without another release.
func TestReleaseBusyStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "browserd.db")
	db, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, _ := sqlitetest.Project(t, db, 1)
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	l := &chrometest.Launcher{}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, StoreTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	s, err := m.CreateSession(t.Context(), p.ID, bb.CreateSessionRequest{KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}

	unlock := sqlitetest.LockWrites(t, path)
	unlocked := make(chan struct{})
	time.AfterFunc(2*time.Second, func() {
		defer close(unlocked)
		unlock()
	})

	start := time.Now()
	_, err = m.ReleaseSession(t.Context(), p.ID, s.ID)
	wantNotRecorded(t, err)
	if took := time.Since(start); took > 1900*time.Millisecond {
		t.Errorf("the release took %v; want an answer before the lock goes (StoreTimeout 500ms)", took)
	}
	<-unlocked
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := db.Session(t.Context(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == bb.StatusCompleted && got.EndReason == "released" && !got.EndedAt.After(time.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s is %s 10s after the lock went; want COMPLETED", s.ID, got.Status)
		}
	}
	if got, err := m.ReleaseSession(t.Context(), p.ID, s.ID); err != nil || got.Status != bb.StatusCompleted {
		t.Errorf("release after the lock went = %v, %v; want COMPLETED", got, err)
	}
	if n := l.Live(); n != 0 {
		t.Errorf("%d browsers running", n)
	}
}
