package recorder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// eventSink collects the events an agent hands to the logs.
type eventSink struct {
	mu     sync.Mutex
	events []bb.BrowserEvent
}

func (s *eventSink) add(ev bb.BrowserEvent) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *eventSink) find(f func(bb.BrowserEvent) bool) (bb.BrowserEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if f(e) {
			return e, true
		}
	}
	return bb.BrowserEvent{}, false
}

// TestAgentLogEvents: without recording, an agent with Log hears a new tab's events
// from its first request on (the tab waits for it), names them by the tab's target,
// cuts params to the payload limit, and hears downloads begin and complete on the
// browser (target ""). The client, which enabled nothing, gets none of them.
func TestAgentLogEvents(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>t</title><img src="/nope.png"><script>console.log("hello-log"); console.log("x".repeat(5000))</script>`)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
		fmt.Fprint(w, "the report")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var got eventSink
	r := New(Config{})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", DownloadDir: t.TempDir(), Log: got.add, LogPayloadLimit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	var tgt struct {
		TargetID string `json:"targetId"`
	}
	if err := c.Call(t.Context(), "", "Target.createTarget", map[string]any{"url": srv.URL + "/page"}, &tgt); err != nil {
		t.Fatal(err)
	}
	on := func(method, contains string) func(bb.BrowserEvent) bool {
		return func(e bb.BrowserEvent) bool {
			return e.Method == method && e.TargetID == tgt.TargetID && strings.Contains(string(e.Params), contains)
		}
	}
	for _, w := range []struct{ method, contains string }{
		{"Target.attachedToTarget", tgt.TargetID},
		{"Network.requestWillBeSent", srv.URL + "/page"}, // the first request: the tab waited
		{"Network.responseReceived", `"status":404`},
		{"Runtime.consoleAPICalled", "hello-log"},
		{"Page.frameNavigated", srv.URL + "/page"},
		{"Page.loadEventFired", ""},
	} {
		waitFor(t, w.method+" "+w.contains, func() bool { _, ok := got.find(on(w.method, w.contains)); return ok })
	}
	long, _ := got.find(on("Runtime.consoleAPICalled", "xxxx"))
	if len(long.Params) != 2000 || long.Size <= 5000 || long.At.IsZero() || long.SessionID != "s" || long.CDPSessionID == "" {
		t.Errorf("long console event: %d of %d bytes, at %v, session %q/%q", len(long.Params), long.Size, long.At, long.SessionID, long.CDPSessionID)
	}

	// A download, heard on the browser's session.
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(t.Context(), "", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	c.eval(t, att.SessionID, fmt.Sprintf(`location.href = %q; 1`, srv.URL+"/file"))
	browser := func(method, contains string) func() bool {
		return func() bool {
			_, ok := got.find(func(e bb.BrowserEvent) bool {
				return e.Method == method && e.TargetID == "" && strings.Contains(string(e.Params), contains)
			})
			return ok
		}
	}
	waitFor(t, "the download's start", browser("Browser.downloadWillBegin", "report.txt"))
	waitFor(t, "the download's end", browser("Browser.downloadProgress", `"completed"`))
	if _, ok := got.find(func(e bb.BrowserEvent) bool {
		return e.Method == "Browser.downloadProgress" && strings.Contains(string(e.Params), `"inProgress"`)
	}); ok {
		t.Error("a download's progress steps are logged")
	}

	if err := c.Call(t.Context(), "", "Target.closeTarget", map[string]any{"targetId": tgt.TargetID}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tab's detach", func() bool { _, ok := got.find(on("Target.detachedFromTarget", tgt.TargetID)); return ok })
	if e, ok := got.find(func(e bb.BrowserEvent) bool { return len(e.Params) == e.Size && !json.Valid(e.Params) }); ok {
		t.Errorf("%s: params %.100q are not JSON", e.Method, e.Params)
	}
}
