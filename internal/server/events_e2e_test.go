package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// eventSite serves a page with an image that is not found and a console error.
func eventSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>events</title></head><body><img src="/missing.png"><script>console.error("boom")</script></body></html>`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// eventLog is an entry of GET /logs, as the inspector reads it.
type eventLog struct {
	Method    string `json:"method"`
	PageID    int    `json:"pageId"`
	Timestamp int64  `json:"timestamp"`
	FrameID   string `json:"frameId"`
	LoaderID  string `json:"loaderId"`
	Request   *struct {
		Params    json.RawMessage `json:"params"`
		RawBody   string          `json:"rawBody"`
		Timestamp int64           `json:"timestamp"`
	} `json:"request"`
	Response json.RawMessage `json:"response"`
}

// TestBrowserEventsInLogs drives a real server and Chromium: a client loads a page with
// a missing image and a console error; /logs (read while the session runs) shows the
// image's request and its 404 and the console message, on the pageId of the client's
// Page.navigate, whatever recordSession says. The client, which never enabled Network,
// gets no Network event, and its own console listening works; a client that enabled
// Network still reads response bodies (the agent's small buffers are its own).
func TestBrowserEventsInLogs(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	site := eventSite(t)
	for _, record := range []bool{true, false} {
		t.Run(fmt.Sprintf("recordSession=%v", record), func(t *testing.T) {
			browserEvents(t, srv, site.URL, record)
		})
	}
	// logSession:false keeps no logs at all, events included.
	quiet := srv.create(t, testAPIKey, map[string]any{"browserSettings": map[string]any{"logSession": false}})
	if code, b := call(t, srv.URL, "GET", "/v1/sessions/"+quiet.ID+"/logs", testAPIKey, nil); code != http.StatusUnprocessableEntity {
		t.Errorf("GET /logs of a logSession:false session = %d %s; want 422", code, b)
	}
	srv.release(t, testAPIKey, quiet.ID)
	srv.stop(t)
}

func browserEvents(t *testing.T, srv *testServer, siteURL string, record bool) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sess := srv.create(t, testAPIKey, map[string]any{"browserSettings": map[string]any{"recordSession": record}})
	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"Runtime.enable", "Page.enable"} { // not Network
		if err := cdp.call(ctx, sid, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cdp.call(ctx, sid, "Page.navigate", map[string]any{"url": siteURL + "/"}, nil); err != nil {
		t.Fatal(err)
	}
	// The client's own events: its console message and load, and no Network event.
	seen := map[string]int{}
	for _, m := range cdp.events {
		seen[m.Method]++
	}
	boom, loaded := false, seen["Page.loadEventFired"] > 0
	for !boom || !loaded {
		m, err := cdp.read(ctx)
		if err != nil {
			t.Fatalf("waiting for the client's console message and load event: %v (seen %v)", err, seen)
		}
		seen[m.Method]++
		boom = boom || (m.Method == "Runtime.consoleAPICalled" && m.SessionID == sid && strings.Contains(string(m.Params), `"boom"`))
		loaded = loaded || (m.Method == "Page.loadEventFired" && m.SessionID == sid)
	}
	if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": "1"}, nil); err != nil { // reads what came before its answer
		t.Fatal(err)
	}
	for _, m := range cdp.events {
		seen[m.Method]++
	}
	for m := range seen {
		if strings.HasPrefix(m, "Network.") {
			t.Errorf("the client got %s without enabling Network (events %v)", m, seen)
		}
	}

	// The logs, while the session runs.
	var navPage int
	check := func(logs []eventLog) string {
		navPage = -1
		for _, l := range logs {
			if l.Method == "Page.navigate" && l.Request != nil && strings.Contains(string(l.Request.Params), siteURL) {
				navPage = l.PageID
			}
		}
		if navPage <= 0 {
			return "no Page.navigate on a page"
		}
		var request, status404, console, navigated bool
		for _, l := range logs {
			if l.PageID != navPage || l.Request == nil {
				continue
			}
			p := string(l.Request.Params)
			switch l.Method {
			case "Network.requestWillBeSent":
				request = request || strings.Contains(p, "/missing.png")
			case "Network.responseReceived":
				status404 = status404 || (strings.Contains(p, "/missing.png") && strings.Contains(p, `"status":404`))
			case "Runtime.consoleAPICalled":
				console = console || strings.Contains(p, `"boom"`)
			case "Page.frameNavigated":
				navigated = navigated || (l.FrameID != "" && l.LoaderID != "" && strings.Contains(p, siteURL))
			}
		}
		if !request || !status404 || !console || !navigated {
			return fmt.Sprintf("on page %d: request %v, 404 %v, console %v, navigated %v", navPage, request, status404, console, navigated)
		}
		return ""
	}
	var logs []eventLog
	var why string
	poll(t, "the browser events in the logs", func() bool {
		callJSON(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/logs", testAPIKey, nil, 200, &logs)
		why = check(logs)
		return why == ""
	})
	attached := false
	for _, l := range logs {
		if !strings.Contains(l.Method, ".") || strings.HasPrefix(l.Method, "browserd.") {
			t.Errorf("odd log entry %+v", l)
		}
		switch l.Method {
		case "Target.attachedToTarget":
			attached = attached || l.PageID == navPage
		case "Network.requestWillBeSent", "Runtime.consoleAPICalled", "Page.frameNavigated", "Page.loadEventFired":
			var msg struct {
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			}
			if err := json.Unmarshal([]byte(l.Request.RawBody), &msg); err != nil || msg.Method != l.Method || string(msg.Params) != string(l.Request.Params) {
				t.Errorf("%s: rawBody %.200s is not the event (params %.200s): %v", l.Method, l.Request.RawBody, l.Request.Params, err)
			}
			if l.Response != nil || l.Timestamp == 0 || l.Request.Timestamp != l.Timestamp {
				t.Errorf("%s: response %s, timestamps %d/%d", l.Method, l.Response, l.Timestamp, l.Request.Timestamp)
			}
		}
	}
	if !attached {
		t.Errorf("no Target.attachedToTarget on page %d", navPage)
	}

	// A client that enables Network reads a response body.
	if err := cdp.call(ctx, sid, "Network.enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := cdp.call(ctx, sid, "Page.reload", nil, nil); err != nil {
		t.Fatal(err)
	}
	var docID string
	for done := false; !done; {
		m, err := cdp.read(ctx)
		if err != nil {
			t.Fatalf("waiting for the document's response: %v", err)
		}
		var p struct {
			RequestID string `json:"requestId"`
			Type      string `json:"type"`
		}
		if m.SessionID != sid || json.Unmarshal(m.Params, &p) != nil {
			continue
		}
		switch {
		case m.Method == "Network.responseReceived" && p.Type == "Document":
			docID = p.RequestID
		case m.Method == "Network.loadingFinished" && p.RequestID == docID:
			done = true
		}
	}
	reqID := docID
	var body struct {
		Body string `json:"body"`
	}
	if err := cdp.call(ctx, sid, "Network.getResponseBody", map[string]any{"requestId": reqID}, &body); err != nil || !strings.Contains(body.Body, "<title>events</title>") {
		t.Errorf("Network.getResponseBody = %.100q, %v", body.Body, err)
	}
	srv.release(t, testAPIKey, sess.ID)
}

// TestBrowserEventsFlood: a page that logs 20000 console messages at once loses most of
// them from the logs, with a browserd.logsDropped entry counting them, and the client's
// commands after the flood are logged all the same.
func TestBrowserEventsFlood(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>flood</title><script>for (let i = 0; i < 20000; i++) console.log("flood", i)</script>`)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sess := srv.create(t, testAPIKey, nil)
	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if title, err := cdp.gotoAndTitle(ctx, sid, site.URL+"/"); err != nil || title != "flood" {
		t.Fatalf("goto = %q, %v", title, err)
	}
	if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": `"after-the-flood"`}, nil); err != nil {
		t.Fatal(err)
	}
	// Chromium may still be sending the flood to the agent when the goto returns (on a
	// loaded machine, seconds later); what it has not sent when the browser stops is never
	// seen, so wait until the agent has read all of it: a console message sent after the
	// flood is logged (one session's events arrive in order). Markers the rate gate drops
	// are counted with the flood's drops.
	var logs []eventLog
	readLogs := func() {
		logs = nil
		callJSON(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/logs", testAPIKey, nil, 200, &logs)
	}
	consoleText := func(l eventLog) string {
		var p struct {
			Args []struct {
				Value any `json:"value"`
			} `json:"args"`
		}
		json.Unmarshal(l.Request.Params, &p)
		if len(p.Args) == 0 {
			return ""
		}
		s, _ := p.Args[0].Value.(string)
		return s
	}
	markers := 0
	for caughtUp := false; !caughtUp; {
		if ctx.Err() != nil {
			t.Fatal("the agent did not catch up with the flood within 2 minutes")
		}
		markers++
		if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": `console.log("caught-up")`}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		readLogs()
		for _, l := range logs {
			caughtUp = caughtUp || (l.Method == "Runtime.consoleAPICalled" && consoleText(l) == "caught-up")
		}
	}
	srv.release(t, testAPIKey, sess.ID)
	// The last drops are marked when the session's agent stops, after the release.
	var consoles, dropped, logged int
	var after bool
	count := func() bool {
		readLogs()
		consoles, dropped, logged, after = 0, 0, 0, false
		for _, l := range logs {
			switch l.Method {
			case "Runtime.consoleAPICalled":
				switch consoleText(l) {
				case "flood":
					consoles++
				case "caught-up":
					logged++
				}
			case "browserd.logsDropped":
				var p struct {
					Dropped int  `json:"dropped"`
					Events  bool `json:"events"`
				}
				if json.Unmarshal(l.Request.Params, &p) != nil || !p.Events {
					t.Errorf("drop marker %s", l.Request.Params)
				}
				dropped += p.Dropped
			case "Runtime.evaluate":
				after = after || strings.Contains(string(l.Request.Params), "after-the-flood")
			}
		}
		// The drops also count the page's other events the gate dropped right after
		// the flood (its load, network and lifecycle events): a few, never fewer.
		extra := consoles + dropped - (20000 + markers - logged)
		return extra >= 0 && extra <= 50
	}
	deadline := time.Now().Add(time.Minute)
	for !count() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if extra := consoles + dropped - (20000 + markers - logged); consoles == 0 || consoles >= 20000 || extra < 0 || extra > 50 {
		t.Errorf("%d console messages of the flood logged and %d events counted as dropped (%d of %d later markers logged); want some of 20000 logged, the rest counted (with at most 50 other events of the page)",
			consoles, dropped, logged, markers)
	}
	if !after {
		t.Error("the command after the flood is not logged")
	}
	srv.stop(t)
}
