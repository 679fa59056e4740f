package browserd_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// poolManager returns a reconciled Manager with a warm pool over a fake launcher, and
// the id of a project with room for 20 sessions.
func poolManager(t *testing.T, pc bb.PoolConfig) (*bb.Manager, *chrometest.Launcher, string) {
	t.Helper()
	return poolManagerWith(t, pc)
}

// poolManagerWith is poolManager with extra session parts.
func poolManagerWith(t *testing.T, pc bb.PoolConfig, parts ...bb.SessionPart) (*bb.Manager, *chrometest.Launcher, string) {
	t.Helper()
	return poolManagerOn(t, &chrometest.Launcher{DevToolsURL: "ws://127.0.0.1:1/devtools/browser/x"}, pc, parts...)
}

// poolManagerOn is poolManagerWith on a given fake launcher.
func poolManagerOn(t *testing.T, l *chrometest.Launcher, pc bb.PoolConfig, parts ...bb.SessionPart) (*bb.Manager, *chrometest.Launcher, string) {
	t.Helper()
	db := sqlitetest.Open(t)
	p, _ := sqlitetest.Project(t, db, 20)
	signer, err := bb.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, MaxSessions: 20, Pool: pc, Parts: parts})
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
	if err := m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m, l, p.ID
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// browserOf returns the fake browser a session runs on.
func browserOf(t *testing.T, l *chrometest.Launcher, s *bb.Session) *chrometest.Browser {
	t.Helper()
	for _, b := range l.Browsers() {
		if b.PID() == s.PID {
			return b
		}
	}
	t.Fatalf("no browser with pid %d", s.PID)
	return nil
}

func TestPoolServesMatchingCreates(t *testing.T) {
	m, l, project := poolManager(t, bb.PoolConfig{Size: 2})
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 2 })

	s, err := m.CreateSession(t.Context(), project, bb.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b := browserOf(t, l, s); !strings.HasPrefix(b.Options().SessionID, "warm-") {
		t.Errorf("default create launched %q; want a warm browser", b.Options().SessionID)
	}
	if st := m.PoolStats(); st.Hits != 1 || st.Misses != 0 {
		t.Errorf("stats after a warm create = %+v; want 1 hit", st)
	}
	eventually(t, "the pool refills", func() bool { return m.PoolStats().Ready == 2 })

	// A viewport other than the pool's needs its own launch.
	req := bb.CreateSessionRequest{Settings: bb.BrowserSettings{Viewport: &bb.Viewport{Width: 800, Height: 600}}}
	s2, err := m.CreateSession(t.Context(), project, req)
	if err != nil {
		t.Fatal(err)
	}
	b2 := browserOf(t, l, s2)
	if got := b2.Options(); got.SessionID != s2.ID || got.Viewport != (bb.Viewport{Width: 800, Height: 600}) {
		t.Errorf("custom viewport create launched %+v; want a cold launch for the session", got)
	}
	if st := m.PoolStats(); st.Misses != 1 || st.Ready != 2 {
		t.Errorf("stats after a cold create = %+v; want 1 miss and the pool untouched", st)
	}

	// Ending a session closes its browser: a pooled browser is used once.
	if _, err := m.ReleaseSession(t.Context(), project, s.ID); err != nil {
		t.Fatal(err)
	}
	b := browserOf(t, l, s)
	eventually(t, "the released session's browser is closed", b.Closed)
}

func TestPoolNeverSharesABrowser(t *testing.T) {
	m, _, project := poolManager(t, bb.PoolConfig{Size: 3})
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 3 })

	const n = 12
	var wg sync.WaitGroup
	sessions := make([]*bb.Session, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			sessions[i], errs[i] = m.CreateSession(context.Background(), project, bb.CreateSessionRequest{})
		})
	}
	wg.Wait()
	pids := map[int]string{}
	for i, s := range sessions {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if other, dup := pids[s.PID]; dup {
			t.Errorf("sessions %s and %s share browser pid %d", other, s.ID, s.PID)
		}
		pids[s.PID] = s.ID
	}
	if st := m.PoolStats(); st.Hits < 1 || st.Hits+st.Misses != n {
		t.Errorf("stats = %+v; want hits+misses = %d with at least one hit", st, n)
	}
}

func TestPoolReplacesACrashedBrowser(t *testing.T) {
	m, l, project := poolManager(t, bb.PoolConfig{Size: 1})
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 1 })
	first := l.Browsers()[0]
	first.Crash()
	eventually(t, "the crashed browser is closed", first.Closed)
	eventually(t, "a replacement is ready", func() bool { return m.PoolStats().Ready == 1 && l.Launched() == 2 })

	s, err := m.CreateSession(t.Context(), project, bb.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s.PID == first.PID() {
		t.Errorf("the crashed warm browser was handed to session %s", s.ID)
	}
}

func TestPoolMemoryBudget(t *testing.T) {
	// The fake browsers cannot measure themselves, so the budget uses the default
	// estimate (128 MiB): 300 MiB fits two of them, whatever Size says.
	m, l, _ := poolManager(t, bb.PoolConfig{Size: 5, MaxMemory: 300 << 20})
	eventually(t, "the pool fills to its budget", func() bool { return m.PoolStats().Ready == 2 })
	time.Sleep(50 * time.Millisecond) // a third launch, if any, would have started by now
	if n := l.Launched(); n != 2 {
		t.Errorf("launched %d warm browsers; the memory budget allows 2", n)
	}
}

func TestPoolIdleExpiry(t *testing.T) {
	m, l, project := poolManager(t, bb.PoolConfig{Size: 2, IdleExpiry: 100 * time.Millisecond})
	eventually(t, "the pool fills", func() bool { return l.Launched() >= 2 })
	eventually(t, "the idle pool empties", func() bool { return m.PoolStats().Ready == 0 && l.Live() == 0 })

	// The next create fills the pool again.
	if _, err := m.CreateSession(t.Context(), project, bb.CreateSessionRequest{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool refills after a create", func() bool { return m.PoolStats().Ready == 2 })
}

func TestPoolClosesWarmBrowsersOnClose(t *testing.T) {
	db := sqlitetest.Open(t)
	signer, _ := bb.NewSigner([]byte(strings.Repeat("k", 32)))
	l := &chrometest.Launcher{}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, Pool: bb.PoolConfig{Size: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool fills", func() bool { return m.PoolStats().Ready == 3 })
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := l.Live(); n != 0 {
		t.Errorf("%d warm browsers still running after Close", n)
	}
}

func TestPoolServesACreateWaitingForALaunchSlot(t *testing.T) {
	db := sqlitetest.Open(t)
	p, _ := sqlitetest.Project(t, db, 5)
	signer, _ := bb.NewSigner([]byte(strings.Repeat("k", 32)))
	started := make(chan struct{}, 10)
	l := &chrometest.Launcher{
		ReadyDelay: 300 * time.Millisecond,
		OnLaunch:   func(context.Context, bb.LaunchOptions) error { started <- struct{}{}; return nil },
	}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, MaxLaunches: 1, Pool: bb.PoolConfig{Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	if err := m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-started // the refill holds the only launch slot now

	s, err := m.CreateSession(t.Context(), p.ID, bb.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b := browserOf(t, l, s); !strings.HasPrefix(b.Options().SessionID, "warm-") {
		t.Errorf("create launched %q; want the warm browser that got ready while it waited", b.Options().SessionID)
	}
	if st := m.PoolStats(); st.Hits != 1 || st.Misses != 0 {
		t.Errorf("stats = %+v; want 1 hit, 0 misses", st)
	}
}
