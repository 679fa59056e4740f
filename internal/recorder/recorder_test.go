package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// testServer serves a page and a file download.
func testServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><head><title>t</title></head><body><p id="x">hello</p></body></html>`)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
		fmt.Fprint(w, "the report")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// client is the test's own CDP client, standing in for a user's.
type client struct {
	*cdp.Conn
}

func newClient(t *testing.T, url string) *client {
	c, err := cdp.Dial(t.Context(), url, cdp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseNow)
	return &client{c}
}

// page opens a tab at url and returns its flat session id.
func (c *client) page(t *testing.T, url string) string {
	t.Helper()
	ctx := t.Context()
	var tgt struct {
		TargetID string `json:"targetId"`
	}
	if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": url}, &tgt); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	return att.SessionID
}

func (c *client) eval(t *testing.T, session, expr string) string {
	t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	if err := c.Call(t.Context(), session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}, &res); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(res.Result.Value)
}

// waitFor polls cond for up to 30 s (a loaded 2-core machine is slow to start tabs).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type sink struct {
	mu     sync.Mutex
	events []bb.RecordingEvent
}

func (s *sink) add(ev []bb.RecordingEvent) {
	s.mu.Lock()
	s.events = append(s.events, ev...)
	s.mu.Unlock()
}

func (s *sink) find(f func(bb.RecordingEvent) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if f(e) {
			return true
		}
	}
	return false
}

func TestRecorder(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	srv := testServer(t)
	dl := filepath.Join(b.Dir(), "downloads") // the browser sees nothing outside its directory
	var got sink
	r := New(Config{FlushInterval: 50 * time.Millisecond})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", DownloadDir: dl, Record: true, Events: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	s1 := c.page(t, srv.URL+"/page")
	waitFor(t, "the page's full snapshot", func() bool {
		return got.find(func(e bb.RecordingEvent) bool {
			return e.Type == bb.RRWebFullSnapshot && strings.Contains(string(e.Data), "hello")
		})
	})
	// Nothing of the recorder is visible to the page's scripts.
	globals := c.eval(t, s1, `JSON.stringify([typeof browserdRecord, typeof browserdRecorderDocument, typeof rrweb,
		Object.getOwnPropertyNames(window).filter(k => /rrweb|browserd/i.test(k))])`)
	if globals != `["undefined","undefined","undefined",[]]` {
		t.Errorf("page sees recorder globals: %s", globals)
	}
	c.eval(t, s1, `document.getElementById('x').textContent = 'changed-by-test'; 1`)
	waitFor(t, "the DOM change", func() bool {
		return got.find(func(e bb.RecordingEvent) bool {
			return e.Type == bb.RRWebIncrementalSnapshot && strings.Contains(string(e.Data), "changed-by-test")
		})
	})
	// A second tab (Playwright's newPage) is recorded too.
	c.page(t, srv.URL+"/page?tab2")
	waitFor(t, "the second tab's meta event", func() bool {
		return got.find(func(e bb.RecordingEvent) bool {
			return e.Type == bb.RRWebMeta && strings.Contains(string(e.Data), "tab2")
		})
	})
	// Downloads land in the session's directory.
	c.eval(t, s1, fmt.Sprintf(`location.href = %q; 1`, srv.URL+"/file"))
	waitFor(t, "the download", func() bool {
		b, err := os.ReadFile(filepath.Join(dl, "report.txt"))
		return err == nil && string(b) == "the report"
	})
	stop()
	stop() // idempotent
	var ev []json.RawMessage
	got.mu.Lock()
	for _, e := range got.events {
		ev = append(ev, e.Data)
	}
	got.mu.Unlock()
	t.Logf("%d events", len(ev))
}

// A browser that is gone makes Start fail, and never hang.
func TestStartUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, err := New(Config{}).Start(ctx, "ws://"+srv.Listener.Addr().String()+"/devtools/browser/x", bb.AgentOptions{Record: true}); err == nil {
		t.Fatal("Start succeeded against a closed server")
	}
}

// TestRecorderHugePage is the reproduction of security review F5.3: a page's own script
// set textContent to 40 MiB, then 5 MiB, and the recorder read, decoded twice and stored
// events of that size. Now text is cut in the page (rrweb's maskTextFn), an event too
// large anyway becomes a marker, a huge message of another kind (a console message) is
// read through without being kept, and the recorder goes on with later events.
func TestRecorderHugePage(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	srv := testServer(t)
	var got sink
	r := New(Config{FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", Record: true, Events: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	s1 := c.page(t, srv.URL+"/page")
	seen := func(what, text string, typ int) {
		t.Helper()
		waitFor(t, what, func() bool {
			return got.find(func(e bb.RecordingEvent) bool {
				return (typ == 0 || e.Type == typ) && strings.Contains(string(e.Data), text)
			})
		})
	}
	seen("the page's full snapshot", "hello", bb.RRWebFullSnapshot)
	// The huge texts go in a hidden element: laying out 40 MiB of text takes the
	// renderer many seconds, which is not what is tested here.
	c.eval(t, s1, `document.getElementById('x').hidden = true; 1`)
	c.eval(t, s1, `document.getElementById('x').textContent = 'x'.repeat(40 << 20); 1`)
	seen("the cut 40 MiB text", "x…[truncated by browserd]", bb.RRWebIncrementalSnapshot)
	c.eval(t, s1, `document.getElementById('x').textContent = 'y'.repeat(5 << 20); 1`)
	seen("the cut 5 MiB text", "y…[truncated by browserd]", bb.RRWebIncrementalSnapshot)
	// An attribute is not text: the event is too large, and a marker takes its place.
	c.eval(t, s1, `document.getElementById('x').setAttribute('data-big', 'z'.repeat(20 << 20)); 1`)
	seen("the marker of the dropped event", "browserd.eventDropped", bb.RRWebCustom)
	// A huge console message reaches the recorder's connection (Runtime is enabled).
	c.eval(t, s1, `console.log('c'.repeat(40 << 20)); 1`)
	c.eval(t, s1, `document.getElementById('x').textContent = 'after-the-huge-ones'; 1`)
	seen("a later change", "after-the-huge-ones", bb.RRWebIncrementalSnapshot)
	stop()
	got.mu.Lock()
	defer got.mu.Unlock()
	var total int
	for _, e := range got.events {
		total += len(e.Data)
		if len(e.Data) > DefaultMaxMessageBytes/8 {
			t.Errorf("an event of type %d has %d bytes; want at most %d", e.Type, len(e.Data), DefaultMaxMessageBytes/8)
		}
	}
	if total > 4<<20 {
		t.Errorf("the recording has %d bytes; want a few hundred KiB", total)
	}
	t.Logf("%d events, %d bytes", len(got.events), total)
}
