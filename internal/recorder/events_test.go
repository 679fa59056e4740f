package recorder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
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

// TestAgentLogsNotItsOwnWorld: with recording, a console message of the recorder's
// isolated world is browserd's, not the page's, and stays out of the logs; the page's
// own messages are logged.
func TestAgentLogsNotItsOwnWorld(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	srv := testServer(t)
	var got eventSink
	r := New(Config{})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", Record: true, Events: func([]bb.RecordingEvent) {}, Log: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	contexts := make(chan json.RawMessage, 64)
	c2, err := cdpDialEvents(t, b.DevToolsURL(), contexts)
	if err != nil {
		t.Fatal(err)
	}
	s := c2.page(t, srv.URL+"/page")
	// Runtime.enable reports the contexts alive then: before the page has committed, the
	// recorder's world in the tab's initial about:blank, gone a moment later.
	waitFor(t, "the page loaded", func() bool {
		var res struct {
			Result struct {
				Value any `json:"value"`
			} `json:"result"`
		}
		err := c2.Call(t.Context(), s, "Runtime.evaluate", map[string]any{"expression": `location.pathname + ' ' + document.readyState`, "returnByValue": true}, &res)
		return err == nil && res.Result.Value == "/page complete"
	})
	if err := c2.Call(t.Context(), s, "Runtime.enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	var recorderCtx int
	for recorderCtx == 0 {
		select {
		case p := <-contexts:
			var ev struct {
				Context struct {
					ID   int    `json:"id"`
					Name string `json:"name"`
				} `json:"context"`
			}
			if json.Unmarshal(p, &ev) == nil && ev.Context.Name == world {
				recorderCtx = ev.Context.ID
			}
		case <-t.Context().Done():
			t.Fatal("no recorder context")
		}
	}
	if err := c2.Call(t.Context(), s, "Runtime.evaluate", map[string]any{"contextId": recorderCtx, "expression": `console.log("from-recorder-world")`}, nil); err != nil {
		t.Fatal(err)
	}
	c2.eval(t, s, `console.log("from-the-page")`)
	waitFor(t, "the page's console message", func() bool {
		_, ok := got.find(func(e bb.BrowserEvent) bool { return strings.Contains(string(e.Params), "from-the-page") })
		return ok
	})
	if e, ok := got.find(func(e bb.BrowserEvent) bool { return strings.Contains(string(e.Params), "from-recorder-world") }); ok {
		t.Errorf("the recorder world's console message is logged: %s", e.Params)
	}
}

// cdpDialEvents is a client whose Runtime.executionContextCreated params go to ch.
func cdpDialEvents(t *testing.T, url string, ch chan json.RawMessage) (*client, error) {
	c, err := cdp.Dial(t.Context(), url, cdp.Options{OnEvent: func(e cdp.Event) {
		if e.Method == "Runtime.executionContextCreated" {
			select {
			case ch <- e.Params:
			default:
			}
		}
	}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.CloseNow)
	return &client{c}, nil
}

func TestContextID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{`{"type":"log","args":[],"executionContextId":7,"timestamp":1}`, 7, true},
		{`{"timestamp":1,"exceptionDetails":{"exceptionId":1,"text":"x","executionContextId": 12}}`, 12, true},
		{`{"args":[{"value":"\"executionContextId\":5"}],"executionContextId":3}`, 3, true},
		{`{"executionContextId":"x"}`, 0, false},
		{`{"type":"log"}`, 0, false},
	}
	for _, tt := range tests {
		if got, ok := contextID([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("contextID(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzContextID: no params panic the context id scan, and an id found is one that
// follows the key in the text.
func FuzzContextID(f *testing.F) {
	f.Add([]byte(`{"executionContextId":7}`))
	f.Add([]byte(`"executionContextId":99999999999999`))
	f.Fuzz(func(t *testing.T, params []byte) {
		id, ok := contextID(params)
		if ok && (id < 0 || !bytes.Contains(params, []byte(`"executionContextId":`))) {
			t.Errorf("contextID(%q) = %d, true", params, id)
		}
	})
}
