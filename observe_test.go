package browserd_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// obsRecorder is a bb.Observer that remembers what it was told.
type obsRecorder struct {
	mu       sync.Mutex
	accepted int
	refused  []bb.RefuseReason
	launches []error
}

func (r *obsRecorder) CreateAccepted(projectID string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
}

func (r *obsRecorder) CreateRefused(projectID string, reason bb.RefuseReason, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, reason)
}

func (r *obsRecorder) BrowserLaunched(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.launches = append(r.launches, err)
}

func TestObserver(t *testing.T) {
	rec := &obsRecorder{}
	l := &chrometest.Launcher{}
	e := newEnv(t, 1, l, bb.ManagerConfig{Observer: rec, MaxSessions: 1})
	s := e.create(t, bb.CreateSessionRequest{})

	// The node is full (MaxSessions 1) before the project (concurrency 1) is asked.
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{}); bb.CodeOf(err) != bb.CodeLimit {
		t.Fatalf("create beyond capacity: %v; want CodeLimit", err)
	}
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{ProjectID: "another"}); err == nil {
		t.Fatal("create with another projectId succeeded")
	}
	if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	l.ReadyErr = errors.New("chrome crashed at start")
	pollUntil(t, func() bool { used, _, _ := e.m.Capacity(); return used == 0 })
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{}); bb.CodeOf(err) != bb.CodeInternal {
		t.Fatalf("create with a failing launch: %v; want CodeInternal", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.m.CreateSession(ctx, e.p.ID, bb.CreateSessionRequest{}); err == nil {
		t.Fatal("create with a cancelled context succeeded")
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.accepted != 1 {
		t.Errorf("accepted = %d, want 1", rec.accepted)
	}
	want := []bb.RefuseReason{bb.RefusedCapacity, bb.RefusedInvalid, bb.RefusedError, bb.RefusedCanceled}
	if diff := cmp.Diff(rec.refused, want); diff != "" {
		t.Errorf("refusals (-got +want):\n%s", diff)
	}
	if len(rec.launches) != 2 || rec.launches[0] != nil || rec.launches[1] == nil {
		t.Errorf("launches = %v; want one ready, one failed", rec.launches)
	}
}

func TestObserverConcurrency(t *testing.T) {
	rec := &obsRecorder{}
	e := newEnv(t, 1, nil, bb.ManagerConfig{Observer: rec, MaxSessions: 4})
	e.create(t, bb.CreateSessionRequest{})
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{}); bb.CodeOf(err) != bb.CodeLimit {
		t.Fatalf("create beyond the project's concurrency: %v; want CodeLimit", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if diff := cmp.Diff(rec.refused, []bb.RefuseReason{bb.RefusedConcurrency}); diff != "" {
		t.Errorf("refusals (-got +want):\n%s", diff)
	}
	if used, max, closed := e.m.Capacity(); used != 1 || max != 4 || closed {
		t.Errorf("Capacity = %d, %d, %v; want 1, 4, false", used, max, closed)
	}
}

// usageLauncher gives fake browsers that report a fixed usage.
type usageLauncher struct {
	*chrometest.Launcher
	usage bb.Usage
}

func (l usageLauncher) Launch(ctx context.Context, opts bb.LaunchOptions) (bb.Browser, error) {
	b, err := l.Launcher.Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return usageBrowser{b, l.usage}, nil
}

type usageBrowser struct {
	bb.Browser
	usage bb.Usage
}

func (b usageBrowser) Usage() (bb.Usage, error) {
	select {
	case <-b.Exited():
		return bb.Usage{}, errors.New("exited")
	default:
		return b.usage, nil
	}
}

func TestSessionUsage(t *testing.T) {
	fake := &chrometest.Launcher{}
	e := newEnv(t, 2, fake, bb.ManagerConfig{})
	// newEnv's Manager uses the plain fake; build one on the usage launcher and the same store.
	m, err := bb.NewManager(bb.ManagerConfig{Store: e.db, Signer: e.signer,
		Launcher: usageLauncher{fake, bb.Usage{CPU: 90 * time.Second, Memory: 300 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	s, err := m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Session(t.Context(), e.p.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MemoryUsage == nil || *got.MemoryUsage != 300<<20 || got.AvgCPUUsage == nil || *got.AvgCPUUsage <= 0 {
		t.Fatalf("live session usage = %v, %v; want 300 MiB and some CPU", got.MemoryUsage, got.AvgCPUUsage)
	}
	list, err := m.Sessions(t.Context(), e.p.ID, bb.SessionFilter{})
	if err != nil || len(list) != 1 || list[0].MemoryUsage == nil {
		t.Fatalf("Sessions = %v, %v; want one with usage", list, err)
	}
	live := m.LiveUsage()
	if len(live) != 1 || live[0].SessionID != s.ID || live[0].ProjectID != e.p.ID || live[0].CPU != 90*time.Second {
		t.Errorf("LiveUsage = %+v", live)
	}
	if _, err := m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	ended, err := m.Session(t.Context(), e.p.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ended.MemoryUsage == nil || *ended.MemoryUsage != 300<<20 || ended.AvgCPUUsage == nil {
		t.Errorf("ended session usage = %v, %v; want the last sample kept", ended.MemoryUsage, ended.AvgCPUUsage)
	}
	if live := m.LiveUsage(); len(live) != 0 {
		t.Errorf("LiveUsage after release = %+v", live)
	}
}

// pollUntil polls cond for up to 10 s.
func pollUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
	}
}

// TestLaunchArgsRefused: a launch whose request-derived command line the kernel refuses
// (EINVAL for a NUL, E2BIG for a huge flag) is the request's fault: 400, and the
// Observer is told ErrLaunchArgs, which readiness does not count (security-review F6).
func TestLaunchArgsRefused(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EINVAL, syscall.E2BIG} {
		t.Run(errno.Error(), func(t *testing.T) {
			rec := &obsRecorder{}
			l := &chrometest.Launcher{OnLaunch: func(context.Context, bb.LaunchOptions) error {
				return fmt.Errorf("launch chrome for session x: %w", &fs.PathError{Op: "fork/exec", Path: "/usr/bin/setpriv", Err: errno})
			}}
			e := newEnv(t, 1, l, bb.ManagerConfig{Observer: rec})
			_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
			if bb.CodeOf(err) != bb.CodeInvalid || !bb.NoRetryOf(err) || !strings.Contains(bb.MessageOf(err), "body/browserSettings") {
				t.Fatalf("CreateSession = %v (code %s); want a CodeInvalid naming body/browserSettings, not to be retried", err, bb.CodeOf(err))
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.launches) != 1 || !errors.Is(rec.launches[0], bb.ErrLaunchArgs) {
				t.Errorf("launches = %v; want one ErrLaunchArgs", rec.launches)
			}
			if diff := cmp.Diff(rec.refused, []bb.RefuseReason{bb.RefusedInvalid}); diff != "" {
				t.Errorf("refusals (-got +want):\n%s", diff)
			}
		})
	}
	// Other exec failures (a missing binary) stay the node's.
	rec := &obsRecorder{}
	l := &chrometest.Launcher{LaunchErr: &fs.PathError{Op: "fork/exec", Path: "/usr/bin/chromium", Err: syscall.ENOENT}}
	e := newEnv(t, 1, l, bb.ManagerConfig{Observer: rec})
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{}); bb.CodeOf(err) != bb.CodeInternal {
		t.Fatalf("CreateSession with ENOENT = %v; want CodeInternal", err)
	}
	if len(rec.launches) != 1 || errors.Is(rec.launches[0], bb.ErrLaunchArgs) {
		t.Errorf("launches = %v; want one failure that is not ErrLaunchArgs", rec.launches)
	}
}
