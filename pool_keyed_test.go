package browserd_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// filesPart is a SessionPart that gives every session with userMetadata "files" the
// LaunchFiles of a fake context, whose version the test changes.
type filesPart struct {
	dir      string
	version  atomic.Value // string
	made     atomic.Int32
	mu       sync.Mutex
	leftover []string // dirs Make created
}

func (p *filesPart) Check(context.Context, string, *bb.CreateSessionRequest) error { return nil }

func (p *filesPart) Prepare(_ context.Context, s *bb.Session, _ *bb.CreateSessionRequest, opts *bb.LaunchOptions) (bb.PartRun, error) {
	if !strings.Contains(string(s.UserMetadata), `"files"`) {
		return nil, nil
	}
	opts.Files = append(opts.Files, p.files())
	return nil, nil
}

func (p *filesPart) files() bb.LaunchFiles {
	v := p.version.Load().(string)
	return bb.LaunchFiles{Key: "context c1", Version: v, Make: func(context.Context) (bb.MadeFiles, func(), error) {
		dir, err := os.MkdirTemp(p.dir, "launch-")
		if err != nil {
			return bb.MadeFiles{}, nil, err
		}
		p.made.Add(1)
		profile := filepath.Join(dir, "profile")
		if err := os.WriteFile(filepath.Join(dir, "version"), []byte(v), 0o600); err != nil {
			return bb.MadeFiles{}, nil, err
		}
		return bb.MadeFiles{Profile: profile}, func() { os.RemoveAll(dir) }, nil
	}}
}

func keyedManager(t *testing.T, pc bb.PoolConfig, parts ...bb.SessionPart) (*bb.Manager, *chrometest.Launcher, string) {
	t.Helper()
	m, l, project := poolManagerWith(t, pc, parts...)
	return m, l, project
}

func TestPoolKeyedServesTheSecondCreate(t *testing.T) {
	m, l, project := keyedManager(t, bb.PoolConfig{Size: 1, Keyed: 2})
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 1 })
	req := bb.CreateSessionRequest{Settings: bb.BrowserSettings{Viewport: &bb.Viewport{Width: 800, Height: 600}}}
	s1, err := m.CreateSession(t.Context(), project, req)
	if err != nil {
		t.Fatal(err)
	}
	if b := browserOf(t, l, s1); b.Options().SessionID != s1.ID {
		t.Errorf("first 800x600 create got %q; want a cold launch", b.Options().SessionID)
	}
	eventually(t, "a warm 800x600 browser is ready", func() bool { return m.PoolStats().Ready == 2 })
	s2, err := m.CreateSession(t.Context(), project, req)
	if err != nil {
		t.Fatal(err)
	}
	b2 := browserOf(t, l, s2)
	if o := b2.Options(); !strings.HasPrefix(o.SessionID, "warm-") || o.Viewport != (bb.Viewport{Width: 800, Height: 600}) {
		t.Errorf("second 800x600 create got %+v; want a warm 800x600 browser", o)
	}
	if !b2.Foregrounded() {
		t.Error("the warm browser was not raised to a session's priority when taken")
	}
	if st := m.PoolStats(); st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats = %+v; want 1 hit and 1 miss", st)
	}
}

func TestPoolKeyedOffLaunchesCold(t *testing.T) {
	m, l, project := keyedManager(t, bb.PoolConfig{Size: 1})
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 1 })
	req := bb.CreateSessionRequest{Settings: bb.BrowserSettings{Viewport: &bb.Viewport{Width: 800, Height: 600}}}
	for range 2 {
		if _, err := m.CreateSession(t.Context(), project, req); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := l.Launched(); n != 3 {
		t.Errorf("launched %d browsers; want the warm one and two cold ones", n)
	}
}

func TestPoolFilesVersions(t *testing.T) {
	fp := &filesPart{dir: t.TempDir()}
	fp.version.Store("v1")
	m, l, project := keyedManager(t, bb.PoolConfig{Size: 1, Keyed: 2}, fp)
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 1 })
	req := bb.CreateSessionRequest{UserMetadata: json.RawMessage(`{"files":true}`)}

	s1, err := m.CreateSession(t.Context(), project, req)
	if err != nil {
		t.Fatal(err)
	}
	o1 := browserOf(t, l, s1).Options()
	if o1.SessionID != s1.ID || o1.Profile == "" {
		t.Errorf("first create with files got %+v; want a cold launch with the made profile", o1)
	}
	eventually(t, "a warm browser with the files is ready", func() bool { return m.PoolStats().Ready == 2 })

	// The content changes: the warm browser of v1 is closed and one of v2 replaces it.
	fp.version.Store("v2")
	m.FilesChanged(fp.files())
	eventually(t, "the v1 browser is replaced", func() bool {
		return m.PoolStats().Ready == 2 && fp.made.Load() == 3
	})
	s2, err := m.CreateSession(t.Context(), project, req)
	if err != nil {
		t.Fatal(err)
	}
	b2 := browserOf(t, l, s2)
	if !strings.HasPrefix(b2.Options().SessionID, "warm-") {
		t.Fatalf("create with v2 files got %q; want the warm v2 browser", b2.Options().SessionID)
	}
	for _, b := range l.Browsers() {
		if b.Options().Files != nil && b != b2 && b.PID() != s1.PID && !b.Closed() && b.Options().Profile == "" {
			t.Errorf("browser %s with files has no profile", b.Options().SessionID)
		}
	}

	// The context is deleted: its warm browsers close at once.
	eventually(t, "a refill for the files", func() bool { return m.PoolStats().Ready == 2 })
	m.FilesGone("context c1")
	eventually(t, "the files' warm browsers are closed", func() bool { return m.PoolStats().Ready == 1 })
	entries, _ := os.ReadDir(fp.dir)
	if len(entries) != 0 {
		t.Errorf("launch files left behind: %v", entries)
	}
}

func TestPoolForegroundFailureDropsTheBrowser(t *testing.T) {
	m, l, project := keyedManager(t, bb.PoolConfig{Size: 1})
	l.ForegroundErr = errors.New("no CAP_SYS_NICE")
	eventually(t, "the pool is full", func() bool { return m.PoolStats().Ready == 1 })
	s, err := m.CreateSession(t.Context(), project, bb.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b := browserOf(t, l, s); b.Options().Background {
		t.Errorf("session got a background browser it could not raise")
	}
}

// TestCreateFilesUnavailable checks that a create whose launch files the blob store
// cannot serve for now answers CodeUnavailable (503, retry), not an internal error.
func TestCreateFilesUnavailable(t *testing.T) {
	part := &unavailablePart{}
	m, _, project := keyedManager(t, bb.PoolConfig{Size: 1}, part)
	_, err := m.CreateSession(t.Context(), project, bb.CreateSessionRequest{})
	if bb.CodeOf(err) != bb.CodeUnavailable {
		t.Fatalf("CreateSession = %v; want code %q", err, bb.CodeUnavailable)
	}
	var e *bb.Error
	if !errors.As(err, &e) || !e.Retry {
		t.Errorf("error %#v does not ask the client to retry", err)
	}
}

type unavailablePart struct{}

func (unavailablePart) Check(context.Context, string, *bb.CreateSessionRequest) error { return nil }

func (unavailablePart) Prepare(_ context.Context, _ *bb.Session, _ *bb.CreateSessionRequest, opts *bb.LaunchOptions) (bb.PartRun, error) {
	opts.Files = append(opts.Files, bb.LaunchFiles{Key: "context c9", Version: "1", Make: func(context.Context) (bb.MadeFiles, func(), error) {
		return bb.MadeFiles{}, nil, &bb.Error{Code: bb.CodeUnavailable, Retry: true, Message: "blob store down"}
	}})
	return nil, nil
}
