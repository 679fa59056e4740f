package browserd_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"github.com/google/go-cmp/cmp"
)

// The Manager's tests run on a real SQLite store and the fake launcher. Those that
// involve a timer run inside a testing/synctest bubble, SQLite included: the database is
// opened in the bubble (its database/sql goroutines belong to it) and closed by
// t.Cleanup, which runs in the bubble too.

// testEnv is a Manager on a fresh SQLite database with one project.
type testEnv struct {
	db     *sqlite.DB
	l      *chrometest.Launcher
	m      *bb.Manager
	p      *bb.Project
	key    string // the project's raw API key
	signer *bb.Signer
}

// newEnv returns a Manager with cfg (its Store, Launcher and Signer filled in) on a
// project with the given concurrency. l may be nil. t.Cleanup closes the Manager and
// checks that no browser outlives it.
func newEnv(t *testing.T, concurrency int, l *chrometest.Launcher, cfg bb.ManagerConfig) *testEnv {
	t.Helper()
	db := sqlitetest.Open(t)
	p, key := sqlitetest.Project(t, db, concurrency)
	if l == nil {
		l = &chrometest.Launcher{}
	}
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Launcher, cfg.Signer = db, l, signer
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
	return &testEnv{db: db, l: l, m: m, p: p, key: key, signer: signer}
}

// create starts a session of the project and fails the test on error.
func (e *testEnv) create(t *testing.T, req bb.CreateSessionRequest) *bb.Session {
	t.Helper()
	s, err := e.m.CreateSession(t.Context(), e.p.ID, req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

// createAsync starts a create in a goroutine; the channel gets its result.
func (e *testEnv) createAsync(ctx context.Context, req bb.CreateSessionRequest) <-chan createResult {
	c := make(chan createResult, 1)
	go func() {
		s, err := e.m.CreateSession(ctx, e.p.ID, req)
		c <- createResult{s, err}
	}()
	return c
}

type createResult struct {
	s   *bb.Session
	err error
}

// stored returns a session as the store has it.
func (e *testEnv) stored(t *testing.T, id string) *bb.Session {
	t.Helper()
	s, err := e.db.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("store: session %s: %v", id, err)
	}
	return s
}

// attach connects a client to a session with its signing key.
func (e *testEnv) attach(t *testing.T, id string) *bb.Attachment {
	t.Helper()
	a, err := e.m.Attach(t.Context(), bb.ConnectCredentials{SigningKey: e.m.SigningKey(id)})
	if err != nil {
		t.Fatalf("Attach %s: %v", id, err)
	}
	return a
}

// wantStatus checks the stored status of a session.
func (e *testEnv) wantStatus(t *testing.T, id string, want bb.SessionStatus) {
	t.Helper()
	if s := e.stored(t, id); s.Status != want {
		t.Errorf("session status = %s (ended %v, %q); want %s", s.Status, s.EndedAt, s.EndReason, want)
	}
}

// wantEnded checks that the store has the session ended with status at endedAt, for a
// reason containing reason.
func (e *testEnv) wantEnded(t *testing.T, id string, status bb.SessionStatus, endedAt time.Time, reason string) {
	t.Helper()
	s := e.stored(t, id)
	if s.Status != status || !s.EndedAt.Equal(endedAt) || !s.UpdatedAt.Equal(endedAt) || !strings.Contains(s.EndReason, reason) {
		t.Errorf("session = %s, endedAt %v, updatedAt %v, reason %q; want %s, endedAt %v, reason containing %q",
			s.Status, s.EndedAt, s.UpdatedAt, s.EndReason, status, endedAt, reason)
	}
}

// wantFreed checks, inside a bubble, that every session ended gave back what it held:
// every browser launched was closed and, on a node and project with room for one
// session (MaxSessions 1, concurrency 1), a new create succeeds.
func (e *testEnv) wantFreed(t *testing.T) {
	t.Helper()
	synctest.Wait() // browsers stop in the background
	if n := e.l.Live(); n != 0 {
		t.Errorf("%d browsers still running", n)
	}
	if closed, launched := e.l.Closed(), e.l.Launched(); closed != launched {
		t.Errorf("%d of %d browsers closed", closed, launched)
	}
	s, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{KeepAlive: true})
	if err != nil {
		t.Fatalf("create after the end: %v; the slot was not given back", err)
	}
	if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
		t.Fatalf("release: %v", err)
	}
	synctest.Wait()
}

func TestCreateSession(t *testing.T) {
	tests := []struct {
		name         string
		req          bb.CreateSessionRequest
		wantTimeout  int
		wantRegion   bb.Region
		wantViewport bb.Viewport
	}{
		{
			name:        "defaults",
			wantTimeout: bb.DefaultProjectTimeout, wantRegion: bb.RegionUSWest2,
			wantViewport: bb.Viewport{Width: 1024, Height: 768},
		},
		{
			name: "settings",
			req: bb.CreateSessionRequest{
				Timeout: 120, KeepAlive: true, Region: bb.RegionEUCentral1,
				UserMetadata: []byte(`{"k":"v"}`),
				Settings:     bb.BrowserSettings{Viewport: &bb.Viewport{Width: 800}},
			},
			wantTimeout: 120, wantRegion: bb.RegionEUCentral1,
			wantViewport: bb.Viewport{Width: 800, Height: 768},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &chrometest.Launcher{ReadyDelay: 2 * time.Second, DevToolsURL: "ws://127.0.0.1:1/devtools/browser/x"}
				e := newEnv(t, 1, l, bb.ManagerConfig{NodeID: "node-a", DefaultViewport: bb.Viewport{Width: 1024, Height: 768}})
				start := time.Now()
				res := e.createAsync(t.Context(), tt.req)

				// While the browser starts, the store says PENDING.
				synctest.Wait()
				pending, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID})
				if err != nil || len(pending) != 1 || pending[0].Status != bb.StatusPending || pending[0].PID != 0 {
					t.Fatalf("store while launching = %v, %v; want one PENDING session without a pid", pending, err)
				}
				r := <-res
				if r.err != nil {
					t.Fatalf("CreateSession: %v", r.err)
				}
				created := r.s

				ready := start.Add(2 * time.Second)
				b := l.Browsers()[0]
				want := &bb.Session{
					ID: created.ID, ProjectID: e.p.ID, Status: bb.StatusRunning,
					CreatedAt: start, UpdatedAt: ready, StartedAt: ready,
					ExpiresAt: ready.Add(time.Duration(tt.wantTimeout) * time.Second),
					KeepAlive: tt.req.KeepAlive, Region: tt.wantRegion, Timeout: tt.wantTimeout,
					UserMetadata: tt.req.UserMetadata, Settings: tt.req.Settings,
					NodeID: "node-a", PID: b.PID(),
				}
				if diff := cmp.Diff(want, created); diff != "" {
					t.Errorf("CreateSession (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(created, e.stored(t, created.ID)); diff != "" {
					t.Errorf("stored session differs from the returned one (-returned +stored):\n%s", diff)
				}
				// Every browser gets a bounded HTTP cache (security-review F8).
				wantOpts := bb.LaunchOptions{SessionID: created.ID, Viewport: tt.wantViewport, Args: []string{"--disk-cache-size=67108864"}}
				if diff := cmp.Diff(wantOpts, b.Options()); diff != "" {
					t.Errorf("launch options (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestCreateSessionProjectChecks(t *testing.T) {
	e := newEnv(t, 1, nil, bb.ManagerConfig{})
	_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{ProjectID: "another-project"})
	if bb.CodeOf(err) != bb.CodeUnauthorized || bb.MessageOf(err) != "Unauthorized Project ID" || !bb.NoRetryOf(err) {
		t.Errorf("create with another projectId: %v (code %s); want CodeUnauthorized \"Unauthorized Project ID\", no retry", err, bb.CodeOf(err))
	}
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{ProjectID: e.p.ID}); err != nil {
		t.Errorf("create with its own projectId: %v", err)
	}
	if e.l.Launched() != 1 {
		t.Errorf("launched %d browsers; want 1", e.l.Launched())
	}
}

// TestConcurrencyRace races creates for a project's last slot: exactly one may win
// (the count and the insert are one transaction), the others get Browserbase's 429.
func TestConcurrencyRace(t *testing.T) {
	const limit, racers = 3, 8
	e := newEnv(t, limit, nil, bb.ManagerConfig{MaxSessions: 2 * racers})
	for range limit - 1 {
		e.create(t, bb.CreateSessionRequest{})
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			_, errs[i] = e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
		})
	}
	close(start)
	wg.Wait()

	wantMsg := "You've exceeded your max concurrent sessions limit (limit 3, currently 3). " +
		"Please contact support to increase your limit."
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case bb.CodeOf(err) != bb.CodeLimit || bb.MessageOf(err) != wantMsg || !bb.NoRetryOf(err):
			t.Errorf("losing create: %v (code %s, no retry %v); want CodeLimit %q, no retry",
				err, bb.CodeOf(err), bb.NoRetryOf(err), wantMsg)
		}
	}
	if won != 1 {
		t.Errorf("%d creates won the last slot; want 1", won)
	}
	all, err := e.db.Sessions(t.Context(), bb.SessionFilter{ProjectID: e.p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != limit {
		t.Errorf("store has %d sessions; want %d (a refused create leaves none)", len(all), limit)
	}
	if e.l.Launched() != limit || e.l.Live() != limit {
		t.Errorf("launched %d, live %d browsers; want %d", e.l.Launched(), e.l.Live(), limit)
	}
}

func TestNodeCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{}
		e := newEnv(t, 10, l, bb.ManagerConfig{MaxSessions: 2})
		s1 := e.create(t, bb.CreateSessionRequest{KeepAlive: true})

		// A create still launching holds its place.
		l.ReadyDelay = 10 * time.Second
		launching := e.createAsync(t.Context(), bb.CreateSessionRequest{KeepAlive: true})
		synctest.Wait()
		_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
		if bb.CodeOf(err) != bb.CodeLimit || !strings.Contains(bb.MessageOf(err), "capacity") {
			t.Fatalf("create on a full node: %v (code %s); want CodeLimit about capacity", err, bb.CodeOf(err))
		}
		if r := <-launching; r.err != nil {
			t.Fatal(r.err)
		}
		all, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID})
		if err != nil || len(all) != 2 {
			t.Fatalf("store has %d sessions (%v); want 2: a refused create leaves none", len(all), err)
		}

		// Ending a session gives its place back.
		if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s1.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e.create(t, bb.CreateSessionRequest{})
	})
}

func TestLaunchFailure(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		setup   func(l *chrometest.Launcher, cancel context.CancelFunc)
		reset   func(l *chrometest.Launcher)
		took    time.Duration // how long the create takes, on the fake clock
		code    bb.ErrorCode
		browser bool // whether a browser was launched (and so must be closed)
	}{
		{
			name: "launch error",
			setup: func(l *chrometest.Launcher, _ context.CancelFunc) {
				l.OnLaunch = func(context.Context, bb.LaunchOptions) error { return errBoom }
			},
			reset: func(l *chrometest.Launcher) { l.OnLaunch = nil },
			code:  bb.CodeInternal,
		},
		{
			name: "not ready",
			setup: func(l *chrometest.Launcher, _ context.CancelFunc) {
				l.ReadyDelay, l.ReadyErr = time.Second, errBoom
			},
			reset: func(l *chrometest.Launcher) { l.ReadyDelay, l.ReadyErr = 0, nil },
			took:  time.Second, code: bb.CodeInternal, browser: true,
		},
		{
			name:  "ready timeout",
			setup: func(l *chrometest.Launcher, _ context.CancelFunc) { l.ReadyDelay = time.Hour },
			reset: func(l *chrometest.Launcher) { l.ReadyDelay = 0 },
			took:  30 * time.Second, code: bb.CodeInternal, browser: true,
		},
		{
			name: "request cancelled",
			setup: func(l *chrometest.Launcher, cancel context.CancelFunc) {
				l.ReadyDelay = time.Hour
				time.AfterFunc(5*time.Second, cancel)
			},
			reset: func(l *chrometest.Launcher) { l.ReadyDelay = 0 },
			took:  5 * time.Second, code: bb.CodeInternal, browser: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &chrometest.Launcher{}
				e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1, LaunchTimeout: 30 * time.Second})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				tt.setup(l, cancel)
				start := time.Now()
				s, err := e.m.CreateSession(ctx, e.p.ID, bb.CreateSessionRequest{KeepAlive: true})
				if s != nil || bb.CodeOf(err) != tt.code {
					t.Fatalf("CreateSession = %v, %v (code %s); want code %s", s, err, bb.CodeOf(err), tt.code)
				}
				if got := time.Since(start); got != tt.took {
					t.Errorf("create failed after %v; want %v", got, tt.took)
				}
				tt.reset(l)

				all, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID})
				if err != nil || len(all) != 1 {
					t.Fatalf("store has %d sessions (%v); want 1", len(all), err)
				}
				e.wantEnded(t, all[0].ID, bb.StatusError, start.Add(tt.took), "launch: ")
				if got, want := l.Launched(), map[bool]int{false: 0, true: 1}[tt.browser]; got != want {
					t.Errorf("launched %d browsers; want %d", got, want)
				}
				e.wantFreed(t)
			})
		})
	}
}

// TestReleaseDuringLaunch releases a session whose browser is still starting: the store
// says COMPLETED at once, and the browser is stopped as soon as it is up.
func TestReleaseDuringLaunch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{ReadyDelay: 10 * time.Second}
		e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1})
		res := e.createAsync(t.Context(), bb.CreateSessionRequest{KeepAlive: true})
		synctest.Wait()
		live, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID, LiveOnly: true})
		if err != nil || len(live) != 1 {
			t.Fatalf("live sessions while launching: %d, %v; want 1", len(live), err)
		}
		id := live[0].ID

		time.Sleep(3 * time.Second)
		released, err := e.m.ReleaseSession(t.Context(), e.p.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		releasedAt := time.Now()
		if released.Status != bb.StatusCompleted || !released.EndedAt.Equal(releasedAt) {
			t.Errorf("ReleaseSession = %s, endedAt %v; want COMPLETED at %v", released.Status, released.EndedAt, releasedAt)
		}

		r := <-res
		if r.err != nil || r.s.Status != bb.StatusCompleted || r.s.PID != 0 {
			t.Fatalf("CreateSession = %+v, %v; want the released session", r.s, r.err)
		}
		e.wantEnded(t, id, bb.StatusCompleted, releasedAt, "released")
		e.wantFreed(t)
	})
}

func TestReleaseSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1, nil, bb.ManagerConfig{MaxSessions: 1})
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		a := e.attach(t, s.ID)

		other, _ := sqlitetest.Project(t, e.db, 1)
		for _, tc := range []struct{ project, id string }{
			{other.ID, s.ID},           // another project's session
			{e.p.ID, bb.NewID()},       // unknown
			{e.p.ID, "not a valid id"}, // malformed
		} {
			if _, err := e.m.ReleaseSession(t.Context(), tc.project, tc.id); bb.CodeOf(err) != bb.CodeNotFound {
				t.Errorf("ReleaseSession(%q, %q) = %v; want CodeNotFound", tc.project, tc.id, err)
			}
		}
		e.wantStatus(t, s.ID, bb.StatusRunning)

		time.Sleep(10 * time.Second)
		endedAt := time.Now()
		first, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if first.Status != bb.StatusCompleted || !first.EndedAt.Equal(endedAt) {
			t.Errorf("release = %s, endedAt %v; want COMPLETED, %v", first.Status, first.EndedAt, endedAt)
		}
		select {
		case <-a.Ended():
		default:
			t.Error("the client's attachment was not told the session ended")
		}
		if st, reason := a.EndReason(); st != bb.StatusCompleted || reason != "released" {
			t.Errorf("EndReason = %s, %q; want COMPLETED, released", st, reason)
		}
		a.Detach()

		time.Sleep(5 * time.Second)
		second, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
		if err != nil {
			t.Fatalf("second release: %v", err)
		}
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("second release differs (-first +second):\n%s", diff)
		}
		e.wantEnded(t, s.ID, bb.StatusCompleted, endedAt, "released")
		e.wantFreed(t)
	})
}

// TestMaxLaunches starts more sessions than MaxLaunches at once: the others wait for a
// launch slot, which is held for Launch and WaitReady.
func TestMaxLaunches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ready = 10 * time.Second
		l := &chrometest.Launcher{ReadyDelay: ready}
		e := newEnv(t, 10, l, bb.ManagerConfig{MaxSessions: 10, MaxLaunches: 2})
		var creates []<-chan createResult
		for range 5 {
			creates = append(creates, e.createAsync(t.Context(), bb.CreateSessionRequest{KeepAlive: true}))
		}
		// A create that gives up while queued launches nothing.
		synctest.Wait() // queue behind the others
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		queued := e.createAsync(ctx, bb.CreateSessionRequest{KeepAlive: true})

		running := func() int {
			ss, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID, Status: bb.StatusRunning})
			if err != nil {
				t.Fatal(err)
			}
			return len(ss)
		}
		for i, want := range []struct{ launched, running int }{{2, 0}, {4, 2}, {5, 4}, {5, 5}} {
			if i > 0 {
				time.Sleep(ready)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if got := l.Launched(); got != want.launched {
				t.Errorf("after %v: %d browsers launched; want %d", time.Duration(i)*ready, got, want.launched)
			}
			if got := running(); got != want.running {
				t.Errorf("after %v: %d sessions running; want %d", time.Duration(i)*ready, got, want.running)
			}
		}
		for _, c := range creates {
			if r := <-c; r.err != nil {
				t.Errorf("CreateSession: %v", r.err)
			}
		}
		if r := <-queued; r.s != nil || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("create cancelled in the queue = %v, %v; want a deadline error", r.s, r.err)
		}
		failed, err := e.db.Sessions(context.Background(), bb.SessionFilter{ProjectID: e.p.ID, Status: bb.StatusError})
		if err != nil || len(failed) != 1 {
			t.Errorf("%d sessions in ERROR (%v); want the cancelled one", len(failed), err)
		}
	})
}
