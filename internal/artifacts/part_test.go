package artifacts

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fsblob"
)

// partStore is an ArtifactStore for the part's tests: it takes marks and logs.
type partStore struct{ memLogs }

func (*partStore) MarkArtifacts(context.Context, string, time.Time) error { return nil }

// fakeAgent counts the agent's starts and stops.
type fakeAgent struct {
	opts         bb.AgentOptions
	starts, stop int
}

func (f *fakeAgent) Start(_ context.Context, _ string, opts bb.AgentOptions) (func(), error) {
	f.opts = opts
	f.starts++
	return func() { f.stop++ }, nil
}

// dirBrowser is a browser of which the part uses only the directory.
type dirBrowser struct {
	bb.Browser // other methods are not called
	dir        string
}

func (d dirBrowser) Dir() string         { return d.dir }
func (d dirBrowser) DevToolsURL() string { return "ws://127.0.0.1:1/devtools/browser/x" }

// oneRun is a Manager with one live session.
type oneRun struct {
	id  string
	run bb.PartRun
}

func (o oneRun) Run(id string, _ bb.SessionPart) bb.PartRun {
	if id != o.id {
		return nil
	}
	return o.run
}

func newPartService(t *testing.T) (*Service, *fakeAgent, *fsblob.Store, string) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	agent := &fakeAgent{}
	spool := filepath.Join(dir, "spool")
	a, err := New(Config{Store: &partStore{}, Sessions: noSessions{}, Blobs: blobs, Agent: agent, SpoolDir: spool, RecordByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, agent, blobs, spool
}

// noSessions finds no session; the part's points never look one up.
type noSessions struct{}

func (noSessions) Session(context.Context, string) (*bb.Session, error) {
	return nil, bb.Errorf(bb.CodeNotFound, "no session")
}

// TestRunStopped: a run links the spool to the browser's directory, points the agent at
// it, is the live session the gateway sees, and at Stopped stops the agent, moves the
// finished downloads to blobs and removes the link.
func TestRunStopped(t *testing.T) {
	a, agent, blobs, spool := newPartService(t)
	ctx := t.Context()
	no := false
	s := &bb.Session{ID: bb.NewID(), Settings: bb.BrowserSettings{LogSession: &no}}
	run, err := a.Prepare(ctx, s, &bb.CreateSessionRequest{}, &bb.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	if err := run.Started(ctx, dirBrowser{dir: bdir}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Live(s.ID); ok {
		t.Fatal("live before SetRuns")
	}
	a.SetRuns(oneRun{s.ID, run})
	link := filepath.Join(spool, s.ID)
	if target, err := os.Readlink(link); err != nil || target != bdir {
		t.Fatalf("spool link = %q, %v; want %q", target, err, bdir)
	}
	live, ok := a.Live(s.ID)
	want := bb.LiveSession{DownloadDir: filepath.Join(bdir, "downloads"), UploadDir: filepath.Join(bdir, "uploads"), Logs: false, LogPayloadLimit: 64 << 10}
	if !ok || live != want {
		t.Errorf("Live = %+v, %v; want %+v", live, ok, want)
	}
	if agent.opts.DownloadDir != want.DownloadDir || !agent.opts.Record || agent.opts.SessionID != s.ID {
		t.Errorf("agent options = %+v", agent.opts)
	}
	if err := os.MkdirAll(filepath.Join(bdir, "downloads"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "done", "b.bin.crdownload": "partial"} {
		if err := os.WriteFile(filepath.Join(bdir, "downloads", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run.Stopped(ctx, nil, bb.StatusCompleted)
	run.Ended(ctx)
	if agent.stop != 1 {
		t.Errorf("agent stopped %d times; want 1", agent.stop)
	}
	list, err := blobs.List(ctx, blobPrefix(s.ID)+"downloads/")
	if err != nil || len(list) != 1 || !strings.HasPrefix(path.Base(list[0].Key), "a-") {
		t.Errorf("downloads in blobs = %+v, %v; want a-<ms>.txt only", list, err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("spool link after Stopped: %v", err)
	}
}

// TestRunEndedWithoutStopped: a run whose create failed after Started stops its agent
// and removes its link; one that never started does nothing.
func TestRunEndedWithoutStopped(t *testing.T) {
	a, agent, _, spool := newPartService(t)
	ctx := t.Context()
	s := &bb.Session{ID: bb.NewID()}
	run, err := a.Prepare(ctx, s, &bb.CreateSessionRequest{}, &bb.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run.Ended(ctx) // never started
	if agent.starts != 0 || agent.stop != 0 {
		t.Fatalf("agent started %d, stopped %d times", agent.starts, agent.stop)
	}
	run, err = a.Prepare(ctx, s, &bb.CreateSessionRequest{}, &bb.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Started(ctx, dirBrowser{dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	run.Ended(ctx)
	if agent.stop != 1 {
		t.Errorf("agent stopped %d times; want 1", agent.stop)
	}
	if _, err := os.Lstat(filepath.Join(spool, s.ID)); !os.IsNotExist(err) {
		t.Errorf("spool link after Ended: %v", err)
	}
}

// The agent hands events to the logs only for a session that keeps logs, and only when
// the server logs browser events (--log-browser-events).
func TestRunLogEvents(t *testing.T) {
	no := false
	tests := []struct {
		name     string
		server   bool
		settings bb.BrowserSettings
		want     bool
	}{
		{name: "on", server: true, want: true},
		{name: "logSession false", server: true, settings: bb.BrowserSettings{LogSession: &no}},
		{name: "server off", server: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := &fakeAgent{}
			a, err := New(Config{Store: &partStore{}, Sessions: noSessions{}, Blobs: noBlobs{}, Agent: agent,
				SpoolDir: t.TempDir(), LogBrowserEvents: tt.server, LogPayloadLimit: 100})
			if err != nil {
				t.Fatal(err)
			}
			run, err := a.Prepare(t.Context(), &bb.Session{ID: bb.NewID(), Settings: tt.settings}, &bb.CreateSessionRequest{}, &bb.LaunchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := run.Started(t.Context(), dirBrowser{dir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			defer run.Ended(t.Context())
			if got := agent.opts.Log != nil; got != tt.want || (got && agent.opts.LogPayloadLimit != 100) {
				t.Errorf("agent Log set %v (payload limit %d); want %v", got, agent.opts.LogPayloadLimit, tt.want)
			}
		})
	}
}

// noBlobs is a blob store the test never reaches.
type noBlobs struct{ bb.BlobStore }
