package browserd_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
)

// TestFence: a fenced Manager kills every browser at once, though the store refuses
// writes, refuses creates, and records each end (ERROR, the reason) once the store
// takes writes again; after Unfence it takes sessions again.
func TestFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, fs := newFaultEnv(t, bb.ManagerConfig{})
		s1 := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		s2 := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		a := e.attach(t, s1.ID)
		if live, _ := e.m.Load(); live != 2 {
			t.Errorf("Load = %d live; want 2", live)
		}

		fs.failing.Store(true)
		fencedAt := time.Now()
		if n := e.m.Fence("node fenced: lost its membership"); n != 2 {
			t.Errorf("Fence ended %d sessions; want 2", n)
		}
		// Fence returns once the browsers are gone: no waiting for anything.
		for _, b := range e.l.Browsers() {
			if !b.Killed() || !b.Closed() {
				t.Errorf("browser %d: killed %v, closed %v after Fence; want both", b.PID(), b.Killed(), b.Closed())
			}
		}
		if n := e.l.Live(); n != 0 {
			t.Errorf("%d browsers running after Fence", n)
		}
		select {
		case <-a.Ended():
		default:
			t.Error("the client was not told the session ended")
		}
		if live, _ := e.m.Load(); live != 0 {
			t.Errorf("Load = %d live after Fence; want 0", live)
		}
		e.wantStatus(t, s1.ID, bb.StatusRunning) // the store refuses writes
		_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
		if bb.CodeOf(err) != bb.CodeUnavailable || !errors.Is(err, bb.ErrFenced) {
			t.Errorf("create while fenced = %v; want CodeUnavailable, ErrFenced", err)
		}

		fs.failing.Store(false)
		time.Sleep(2 * time.Second) // the first retry is after a second
		synctest.Wait()
		for _, id := range []string{s1.ID, s2.ID} {
			e.wantEnded(t, id, bb.StatusError, fencedAt, "node fenced")
		}
		e.m.Unfence()
		e.create(t, bb.CreateSessionRequest{})
	})
}

// TestFenceKeepsPeerEnd: an end a peer stored first (the node was marked lost) stays.
func TestFenceKeepsPeerEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2, nil, bb.ManagerConfig{})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		lostAt := time.Now().UTC().Truncate(time.Millisecond)
		peer, err := e.m.EndStoredSession(t.Context(), s.ID, bb.StatusError, "node lost")
		if err != nil || peer.Status != bb.StatusError {
			t.Fatalf("EndStoredSession = %+v, %v", peer, err)
		}
		time.Sleep(time.Second)
		e.m.Fence("node fenced: marked lost")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		e.wantEnded(t, s.ID, bb.StatusError, lostAt, "node lost")
		if n := e.m.PendingEnds(); n != 0 {
			t.Errorf("PendingEnds = %d; want 0", n)
		}
	})
}

// TestDrain: a draining Manager refuses creates with 503 and lets its sessions run.
func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2, nil, bb.ManagerConfig{})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		e.m.Drain()
		_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
		if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) || !errors.Is(err, bb.ErrDraining) {
			t.Errorf("create while draining = %v; want CodeUnavailable, retry, ErrDraining", err)
		}
		time.Sleep(time.Minute)
		e.wantStatus(t, s.ID, bb.StatusRunning)
		if live, _ := e.m.Load(); live != 1 {
			t.Errorf("Load = %d; want 1", live)
		}
		if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if live, _ := e.m.Load(); live != 0 {
			t.Errorf("Load after the release = %d; want 0", live)
		}
	})
}

// TestNodeSessions: a survivor finds a peer's live sessions, of every project, and
// ends them in the store only.
func TestNodeSessions(t *testing.T) {
	e := newEnv(t, 4, nil, bb.ManagerConfig{NodeID: "peer"})
	s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
	got, err := e.m.NodeSessions(t.Context(), "peer")
	if err != nil || len(got) != 1 || got[0].ID != s.ID {
		t.Fatalf("NodeSessions(peer) = %v, %v; want %s", got, err, s.ID)
	}
	if got, err := e.m.NodeSessions(t.Context(), "other"); err != nil || len(got) != 0 {
		t.Errorf("NodeSessions(other) = %v, %v; want none", got, err)
	}
	ended, err := e.m.EndStoredSession(t.Context(), s.ID, bb.StatusError, "node lost")
	if err != nil || ended.Status != bb.StatusError || ended.EndReason != "node lost" {
		t.Errorf("EndStoredSession = %+v, %v", ended, err)
	}
	if got, _ := e.m.NodeSessions(t.Context(), "peer"); len(got) != 0 {
		t.Errorf("NodeSessions after the end = %d; want 0", len(got))
	}
}

// TestLoadWarmKeys: a heartbeat's warm keys name the shelves with a ready browser, the
// default one as "".
func TestLoadWarmKeys(t *testing.T) {
	m, _, _ := poolManager(t, bb.PoolConfig{Size: 1})
	eventually(t, "a warm browser", func() bool { return m.PoolStats().Ready == 1 })
	live, warm := m.Load()
	if live != 0 || len(warm) != 1 || warm[0] != "" {
		t.Errorf("Load = %d, %q; want 0, [\"\"]", live, warm)
	}
	if err := m.Accepting(); err != nil {
		t.Errorf("Accepting = %v; want nil", err)
	}
	m.Drain()
	if err := m.Accepting(); !errors.Is(err, bb.ErrDraining) {
		t.Errorf("Accepting while draining = %v; want ErrDraining", err)
	}
}
