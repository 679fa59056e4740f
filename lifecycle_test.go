package browserd_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// wantEndedChan checks whether an attachment was told its session ended.
func wantEndedChan(t *testing.T, a *bb.Attachment, want bool) {
	t.Helper()
	select {
	case <-a.Ended():
		if !want {
			t.Error("attachment ended; want it live")
		}
	default:
		if want {
			t.Error("attachment not ended; want it ended")
		}
	}
}

func TestTimeout(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "keepAlive"}[keepAlive], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 1, nil, bb.ManagerConfig{MaxSessions: 1})
				s := e.create(t, bb.CreateSessionRequest{Timeout: 60, KeepAlive: keepAlive})
				a := e.attach(t, s.ID)

				time.Sleep(time.Until(s.ExpiresAt) - time.Millisecond)
				synctest.Wait()
				e.wantStatus(t, s.ID, bb.StatusRunning)
				wantEndedChan(t, a, false)

				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				e.wantEnded(t, s.ID, bb.StatusTimedOut, s.ExpiresAt, "timeout")
				wantEndedChan(t, a, true)
				if st, _ := a.EndReason(); st != bb.StatusTimedOut {
					t.Errorf("EndReason status = %s; want TIMED_OUT", st)
				}
				a.Detach()
				e.wantFreed(t)
			})
		})
	}
}

func TestConnectDeadline(t *testing.T) {
	tests := []struct {
		name      string
		cfg       time.Duration // ManagerConfig.ConnectTimeout
		keepAlive bool
		attach    bool          // a client connects (and stays) after 1s
		wantEnd   time.Duration // after create; 0: lives until its timeout
	}{
		{name: "0 disables"},
		{name: "configured", cfg: 30 * time.Second, wantEnd: 30 * time.Second},
		{name: "disabled", cfg: -1},
		{name: "keepAlive", keepAlive: true},
		{name: "client connected", attach: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, 1, nil, bb.ManagerConfig{MaxSessions: 1, ConnectTimeout: tt.cfg})
				start := time.Now()
				s := e.create(t, bb.CreateSessionRequest{Timeout: 3600, KeepAlive: tt.keepAlive})
				if tt.attach {
					time.Sleep(time.Second)
					defer e.attach(t, s.ID).Detach()
				}
				if tt.wantEnd == 0 {
					time.Sleep(time.Until(s.ExpiresAt) - time.Millisecond)
					synctest.Wait()
					e.wantStatus(t, s.ID, bb.StatusRunning)
					return
				}
				time.Sleep(tt.wantEnd - time.Millisecond)
				synctest.Wait()
				e.wantStatus(t, s.ID, bb.StatusRunning)
				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				e.wantEnded(t, s.ID, bb.StatusTimedOut, start.Add(tt.wantEnd), "connect deadline")
				e.wantFreed(t)
			})
		})
	}
}

func TestLastClientDisconnects(t *testing.T) {
	const grace = 3 * time.Second
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, nil, bb.ManagerConfig{MaxSessions: 1, DisconnectGrace: grace})
		s := e.create(t, bb.CreateSessionRequest{Timeout: 3600})
		a1, a2 := e.attach(t, s.ID), e.attach(t, s.ID)

		// One of two clients leaving (twice: Detach counts once) ends nothing.
		a1.Detach()
		a1.Detach()
		time.Sleep(10 * grace)
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusRunning)

		// A reconnect within the grace period keeps the session.
		a2.Detach()
		time.Sleep(grace - time.Millisecond)
		a3 := e.attach(t, s.ID)
		time.Sleep(10 * grace)
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusRunning)

		// The last client leaving for good ends it after the grace period.
		time.Sleep(time.Minute)
		a3.Detach()
		left := time.Now()
		time.Sleep(grace - time.Millisecond)
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusRunning)
		wantEndedChan(t, a3, false)
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		e.wantEnded(t, s.ID, bb.StatusCompleted, left.Add(grace), "disconnected")
		wantEndedChan(t, a3, true)

		if _, err := e.m.Attach(t.Context(), bb.ConnectCredentials{SigningKey: e.m.SigningKey(s.ID)}); bb.CodeOf(err) != bb.CodeGone {
			t.Errorf("Attach after the end: %v; want CodeGone", err)
		}
		e.wantFreed(t)
	})
}

func TestKeepAliveSurvivesDisconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{DevToolsURL: "ws://127.0.0.1:9/devtools/browser/b"}
		e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1})
		s := e.create(t, bb.CreateSessionRequest{Timeout: 7200, KeepAlive: true})
		for range 3 {
			a := e.attach(t, s.ID)
			if a.SessionID != s.ID || a.ProjectID != e.p.ID || a.BrowserURL != l.DevToolsURL {
				t.Errorf("Attachment = %q, %q, %q; want %q, %q, %q",
					a.SessionID, a.ProjectID, a.BrowserURL, s.ID, e.p.ID, l.DevToolsURL)
			}
			a.Detach()
			time.Sleep(30 * time.Minute)
			synctest.Wait()
			e.wantStatus(t, s.ID, bb.StatusRunning)
		}
		if l.Live() != 1 {
			t.Errorf("%d browsers running; want 1", l.Live())
		}
		released, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		if err != nil || released.Status != bb.StatusCompleted {
			t.Fatalf("release = %v, %v; want COMPLETED", released, err)
		}
		e.wantFreed(t)
	})
}

func TestBrowserCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{}
		e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		a := e.attach(t, s.ID)
		time.Sleep(time.Minute)
		crashed := time.Now()
		l.Browsers()[0].Crash()
		synctest.Wait() // no time passes: the end is immediate
		e.wantEnded(t, s.ID, bb.StatusError, crashed, "exited unexpectedly")
		wantEndedChan(t, a, true)
		if st, reason := a.EndReason(); st != bb.StatusError || reason == "" {
			t.Errorf("EndReason = %s, %q; want ERROR with a reason", st, reason)
		}
		if !l.Browsers()[0].Closed() {
			t.Error("the crashed browser was not closed (its files must go)")
		}
		a.Detach()
		e.wantFreed(t)
	})
}

// TestBrowserClose: a client's Browser.close makes the browser exit; that is a normal
// end, keepAlive or not.
func TestBrowserClose(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "keepAlive"}[keepAlive], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &chrometest.Launcher{}
				e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1})
				s := e.create(t, bb.CreateSessionRequest{KeepAlive: keepAlive})
				a := e.attach(t, s.ID)
				time.Sleep(time.Second)
				a.BrowserClosing()
				l.Browsers()[0].Crash() // the exit that follows
				synctest.Wait()
				e.wantEnded(t, s.ID, bb.StatusCompleted, time.Now(), "closed by a client")
				wantEndedChan(t, a, true)
				a.Detach()
				e.wantFreed(t)
			})
		})
	}
}

func TestAttach(t *testing.T) {
	e := newEnv(t, 2, nil, bb.ManagerConfig{})
	live := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
	ended := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
	if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, ended.ID); err != nil {
		t.Fatal(err)
	}
	_, otherKey := sqlitetest.Project(t, e.db, 1)
	otherSigner, err := bb.NewSigner([]byte("another secret, also 32 bytes long"))
	if err != nil {
		t.Fatal(err)
	}
	key := e.m.SigningKey(live.ID)

	tests := []struct {
		name string
		c    bb.ConnectCredentials
		want bb.ErrorCode // "" for success
	}{
		{name: "signing key", c: bb.ConnectCredentials{SigningKey: key}},
		{name: "api key and session id", c: bb.ConnectCredentials{APIKey: e.key, SessionID: live.ID}},
		{name: "no credentials", want: bb.CodeUnauthorized},
		{name: "api key without session id", c: bb.ConnectCredentials{APIKey: e.key}, want: bb.CodeUnauthorized},
		{name: "garbage signing key", c: bb.ConnectCredentials{SigningKey: "garbage"}, want: bb.CodeUnauthorized},
		{name: "tampered signing key", c: bb.ConnectCredentials{SigningKey: key[:len(key)-1] + flip(key[len(key)-1])}, want: bb.CodeUnauthorized},
		{name: "another server's signing key", c: bb.ConnectCredentials{SigningKey: otherSigner.SigningKey(live.ID)}, want: bb.CodeUnauthorized},
		{name: "wrong api key", c: bb.ConnectCredentials{APIKey: bb.NewAPIKey(), SessionID: live.ID}, want: bb.CodeUnauthorized},
		{name: "another project's api key", c: bb.ConnectCredentials{APIKey: otherKey, SessionID: live.ID}, want: bb.CodeNotFound},
		{name: "another project's api key, ended session", c: bb.ConnectCredentials{APIKey: otherKey, SessionID: ended.ID}, want: bb.CodeNotFound},
		{name: "unknown session", c: bb.ConnectCredentials{SigningKey: e.m.SigningKey(bb.NewID())}, want: bb.CodeNotFound},
		{name: "unknown session id", c: bb.ConnectCredentials{APIKey: e.key, SessionID: bb.NewID()}, want: bb.CodeNotFound},
		{name: "ended session", c: bb.ConnectCredentials{SigningKey: e.m.SigningKey(ended.ID)}, want: bb.CodeGone},
		{name: "ended session by api key", c: bb.ConnectCredentials{APIKey: e.key, SessionID: ended.ID}, want: bb.CodeGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := e.m.Attach(t.Context(), tt.c)
			if got := bb.CodeOf(err); got != tt.want {
				t.Fatalf("Attach = %v (code %q); want code %q", err, got, tt.want)
			}
			if err != nil {
				if a != nil {
					t.Errorf("Attach returned an attachment with error %v", err)
				}
				return
			}
			if a.SessionID != live.ID || a.ProjectID != e.p.ID {
				t.Errorf("Attachment of session %q, project %q; want %q, %q", a.SessionID, a.ProjectID, live.ID, e.p.ID)
			}
			a.Detach()
		})
	}
}

// flip returns a different base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{ReapKilled: 3}
		e := newEnv(t, 10, l, bb.ManagerConfig{NodeID: "node-a"})
		earlier := time.Now()
		put := func(node string, status bb.SessionStatus) *bb.Session {
			s := &bb.Session{
				ID: bb.NewID(), ProjectID: e.p.ID, Status: status, CreatedAt: earlier, UpdatedAt: earlier,
				StartedAt: earlier, ExpiresAt: earlier.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600,
				NodeID: node, PID: 4242,
			}
			if status.Terminal() {
				s.EndedAt, s.EndReason = earlier, "released"
			}
			if err := e.db.CreateSession(context.Background(), s, 10); err != nil {
				t.Fatal(err)
			}
			return s
		}
		running, pending := put("node-a", bb.StatusRunning), put("node-a", bb.StatusPending)
		completed := put("node-a", bb.StatusCompleted)
		otherNode := put("node-b", bb.StatusRunning)

		time.Sleep(time.Minute)
		if err := e.m.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		if l.Reaped() != 1 {
			t.Errorf("Reap called %d times; want 1", l.Reaped())
		}
		for _, s := range []*bb.Session{running, pending} {
			e.wantEnded(t, s.ID, bb.StatusError, time.Now(), "restarted")
			if _, err := e.m.Attach(t.Context(), bb.ConnectCredentials{SigningKey: e.m.SigningKey(s.ID)}); bb.CodeOf(err) != bb.CodeGone {
				t.Errorf("Attach to a reconciled session: %v; want CodeGone", err)
			}
		}
		e.wantEnded(t, completed.ID, bb.StatusCompleted, earlier, "released")
		e.wantStatus(t, otherNode.ID, bb.StatusRunning)

		// The ended sessions no longer count against the project.
		e.create(t, bb.CreateSessionRequest{})
	})
}

func TestReconcileReapError(t *testing.T) {
	errReap := errors.New("reap failed")
	e := newEnv(t, 1, &chrometest.Launcher{ReapErr: errReap}, bb.ManagerConfig{})
	if err := e.m.Reconcile(t.Context()); !errors.Is(err, errReap) {
		t.Errorf("Reconcile = %v; want the reap error", err)
	}
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{}
		e := newEnv(t, 5, l, bb.ManagerConfig{MaxSessions: 5})
		kept := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		used := e.create(t, bb.CreateSessionRequest{})
		a := e.attach(t, used.ID)
		l.ReadyDelay = 10 * time.Second
		starting := e.createAsync(t.Context(), bb.CreateSessionRequest{KeepAlive: true})
		synctest.Wait()

		time.Sleep(time.Second)
		closedAt := time.Now()
		if err := e.m.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Close waited for the create in flight, which it refused.
		if got, want := time.Since(closedAt), 9*time.Second; got != want {
			t.Errorf("Close took %v; want %v (the rest of the launch)", got, want)
		}
		r := <-starting
		if r.s != nil || bb.CodeOf(r.err) != bb.CodeUnavailable {
			t.Errorf("create in flight during Close = %v, %v; want CodeUnavailable", r.s, r.err)
		}
		e.wantEnded(t, kept.ID, bb.StatusCompleted, closedAt, "server shutting down")
		e.wantEnded(t, used.ID, bb.StatusCompleted, closedAt, "server shutting down")
		all, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID})
		if err != nil || len(all) != 3 {
			t.Fatalf("store has %d sessions (%v); want 3", len(all), err)
		}
		for _, s := range all {
			if s.ID != kept.ID && s.ID != used.ID { // the refused one
				e.wantEnded(t, s.ID, bb.StatusCompleted, closedAt.Add(9*time.Second), "server shutting down")
			}
		}
		wantEndedChan(t, a, true)
		a.Detach()
		if l.Live() != 0 || l.Closed() != 3 {
			t.Errorf("after Close: %d browsers running, %d of 3 closed", l.Live(), l.Closed())
		}

		_, err = e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
		if bb.CodeOf(err) != bb.CodeUnavailable || !errors.Is(err, bb.ErrManagerClosed) {
			t.Errorf("create after Close: %v; want CodeUnavailable", err)
		}
		if l.Launched() != 3 {
			t.Errorf("launched %d browsers; want 3", l.Launched())
		}
	})
}
