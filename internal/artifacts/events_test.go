package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// runWriter runs w until the test ends.
func runWriter(t *testing.T, w *logWriter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func event(target, cdpSession, method, params string) bb.BrowserEvent {
	return bb.BrowserEvent{SessionID: "s", TargetID: target, CDPSessionID: cdpSession, Method: method,
		Params: []byte(params), Size: len(params), At: time.UnixMilli(1700000000000)}
}

// A tab's events and the commands clients send it share a pageId, whichever comes first
// and whatever CDP sessions they travel on; the browser is 0.
func TestLogWriterEventPages(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1<<20, 1<<20)
	runWriter(t, w)
	a := &Service{logs: w}
	cmd := func(cdpSession, method string) bb.CDPExchange {
		req := fmt.Sprintf(`{"id":1,"method":%q,"sessionId":%q}`, method, cdpSession)
		return bb.CDPExchange{SessionID: "s", Method: method, CDPSessionID: cdpSession, Request: []byte(req), RequestSize: len(req), RequestAt: time.Now()}
	}
	w.enqueueEvent(event("T1", "agent1", "Target.attachedToTarget", `{"sessionId":"agent1","targetInfo":{"targetId":"T1"}}`))
	a.RecordTarget("s", "client1", "T1")
	w.enqueue(cmd("client1", "Page.navigate"))                                                                             // T1: page 1
	w.enqueueEvent(event("T1", "agent1", "Network.requestWillBeSent", `{"requestId":"1","loaderId":"L1","frameId":"F1"}`)) // page 1
	w.enqueue(cmd("client2", "Runtime.evaluate"))                                                                          // before its attach: page 2
	a.RecordTarget("s", "client2", "T2")
	w.enqueueEvent(event("T2", "agent2", "Page.frameNavigated", `{"frame":{"id":"F2","loaderId":"L2","url":"u"},"type":"Navigation"}`)) // page 2
	w.enqueueEvent(event("T3", "agent3", "Runtime.consoleAPICalled", `{"type":"error","args":[{"type":"string","value":"boom"}]}`))     // page 3
	w.enqueueEvent(event("", "", "Browser.downloadWillBegin", `{"frameId":"F1","guid":"g","url":"u","suggestedFilename":"a.txt"}`))     // page 0
	w.enqueue(cmd("", "Target.getTargets"))                                                                                             // page 0
	w.flush(context.Background(), "s", true)

	type summary struct {
		Method, Frame, Loader, Body string
		Page                        int
		Response                    bool
	}
	var got []summary
	for _, l := range st.all() {
		got = append(got, summary{Method: l.Method, Page: l.PageID, Frame: l.FrameID, Loader: l.LoaderID, Body: string(l.Request.Body), Response: l.Response != nil})
	}
	want := []summary{
		{Method: "Target.attachedToTarget", Page: 1, Body: `{"sessionId":"agent1","targetInfo":{"targetId":"T1"}}`},
		{Method: "Page.navigate", Page: 1, Body: `{}`},
		{Method: "Network.requestWillBeSent", Page: 1, Frame: "F1", Loader: "L1", Body: `{"requestId":"1","loaderId":"L1","frameId":"F1"}`},
		{Method: "Runtime.evaluate", Page: 2, Body: `{}`},
		{Method: "Page.frameNavigated", Page: 2, Frame: "F2", Loader: "L2", Body: `{"frame":{"id":"F2","loaderId":"L2","url":"u"},"type":"Navigation"}`},
		{Method: "Runtime.consoleAPICalled", Page: 3, Body: `{"type":"error","args":[{"type":"string","value":"boom"}]}`},
		{Method: "Browser.downloadWillBegin", Page: 0, Frame: "F1", Body: `{"frameId":"F1","guid":"g","url":"u","suggestedFilename":"a.txt"}`},
		{Method: "Target.getTargets", Page: 0, Body: `{}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

func TestDecodeEvent(t *testing.T) {
	ev := event("T", "S", "Runtime.consoleAPICalled", `{"type":"log","args":[]}`)
	m, _ := decodeEvent(&ev, 1<<10)
	if want := `{"method":"Runtime.consoleAPICalled","params":{"type":"log","args":[]},"sessionId":"S"}`; m.Raw != want {
		t.Errorf("raw = %s; want %s", m.Raw, want)
	}
	if !m.Timestamp.Equal(ev.At) {
		t.Errorf("timestamp = %v; want %v", m.Timestamp, ev.At)
	}
	browser := event("", "", "Browser.downloadProgress", `{"guid":"g","state":"completed"}`)
	if m, _ := decodeEvent(&browser, 1<<10); m.Raw != `{"method":"Browser.downloadProgress","params":{"guid":"g","state":"completed"}}` {
		t.Errorf("browser raw = %s", m.Raw)
	}
	// Over the limit: cut with the marker, the body says how large the message was.
	long := event("T", "S", "Runtime.consoleAPICalled", `{"args":[{"value":"`+strings.Repeat("é", 100)+`"}]}`)
	m, ids := decodeEvent(&long, 64)
	if !strings.HasSuffix(m.Raw, bb.TruncationMarker) || len(m.Raw) > 64+len(bb.TruncationMarker) || ids != (frameIDs{}) {
		t.Errorf("cut raw = %q, ids %+v", m.Raw, ids)
	}
	if want := fmt.Sprintf(`{"browserdTruncated":true,"size":%d}`, 46+len(long.Params)+len(`,"sessionId":"S"}`)); string(m.Body) != want {
		t.Errorf("cut body = %s; want %s", m.Body, want)
	}
	// Params the agent cut already (Size is the whole).
	cut := long
	cut.Params = cut.Params[:20]
	if m, _ := decodeEvent(&cut, 1<<10); !strings.HasSuffix(m.Raw, bb.TruncationMarker) || !strings.HasPrefix(string(m.Body), `{"browserdTruncated":true`) {
		t.Errorf("pre-cut: raw %q body %s", m.Raw, m.Body)
	}
	// Params that are not an object give {} (the wire's params are an object).
	odd := event("T", "", "Page.loadEventFired", `[1]`)
	if m, _ := decodeEvent(&odd, 1<<10); string(m.Body) != `{}` {
		t.Errorf("array params body = %s", m.Body)
	}
}

// Events take at most their share of the session's limit; commands keep the rest.
func TestLogWriterEventShare(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1000, 1<<20) // events: 750 bytes
	runWriter(t, w)
	for range 20 {
		w.enqueueEvent(event("T", "S", "Runtime.consoleAPICalled", `{"type":"log","args":[{"value":"x"}]}`)) // 98 bytes
	}
	req := `{"id":1,"method":"Page.reload"}`
	w.enqueue(bb.CDPExchange{SessionID: "s", Method: "Page.reload", Request: []byte(req), RequestSize: len(req), RequestAt: time.Now()})
	w.flush(context.Background(), "s", true)
	var methods []string
	for _, l := range st.all() {
		methods = append(methods, l.Method)
	}
	want := append(strings.Split(strings.Repeat("Runtime.consoleAPICalled ", 7), " ")[:7], "browserd.logLimitReached", "Page.reload")
	if diff := cmp.Diff(want, methods); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
}

// A page that floods the queue with events loses events, counted in a marker; the
// commands still find room.
func TestLogWriterEventQueue(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1<<20, 1<<20)
	for range maxQueued {
		w.enqueueEvent(event("T", "S", "Runtime.consoleAPICalled", `{}`))
	}
	for range 10 {
		w.enqueue(bb.CDPExchange{SessionID: "s", Method: "Page.reload", Request: []byte(`{}`), RequestSize: 2, RequestAt: time.Now()})
	}
	runWriter(t, w)
	w.flush(context.Background(), "s", true)
	count := map[string]int{}
	var marker string
	for _, l := range st.all() {
		count[l.Method]++
		if l.Method == "browserd.logsDropped" {
			marker = string(l.Request.Body)
		}
	}
	want := map[string]int{"Runtime.consoleAPICalled": maxQueued / 2, "Page.reload": 10, "browserd.logsDropped": 1}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if wantMarker := fmt.Sprintf(`{"dropped":%d,"events":true,"reason":"the log queue had no more room for browser events"}`, maxQueued/2); marker != wantMarker {
		t.Errorf("marker = %s; want %s", marker, wantMarker)
	}
}

// A rate-drop marker that finds the queue's event share full keeps its count: it joins
// the queue's own drops instead of counting as one lost event.
func TestLogWriterMarkerOnFullQueue(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1<<20, 1<<20)
	for range maxQueued {
		w.enqueueEvent(event("T", "S", "Runtime.consoleAPICalled", `{}`))
	}
	body := `{"dropped":1234,"events":true,"reason":"the browser sent more than 1000 events a second"}`
	w.enqueueCounted(bb.BrowserEvent{SessionID: "s", Method: "browserd.logsDropped", Params: []byte(body), Size: len(body), At: time.Now()}, 1234)
	runWriter(t, w)
	w.flush(context.Background(), "s", true)
	logged, dropped := 0, 0
	for _, l := range st.all() {
		switch l.Method {
		case "Runtime.consoleAPICalled":
			logged++
		case "browserd.logsDropped":
			var p struct {
				Dropped int `json:"dropped"`
			}
			if err := json.Unmarshal(l.Request.Body, &p); err != nil {
				t.Fatal(err)
			}
			dropped += p.Dropped
		}
	}
	if want := maxQueued + 1234; logged+dropped != want {
		t.Errorf("%d logged + %d counted as dropped = %d; want %d (every event and the marker's count)", logged, dropped, logged+dropped, want)
	}
}

func TestEventGate(t *testing.T) {
	var g eventGate
	t0 := time.Unix(1700000000, 0)
	for i := range eventBurst {
		if ok, _ := g.admit(t0); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	for range 3 {
		if ok, _ := g.admit(t0); ok {
			t.Fatal("event over the burst admitted")
		}
	}
	ok, dropped := g.admit(t0.Add(time.Second / eventRate))
	if !ok || dropped != 3 {
		t.Errorf("after a token's time: ok %v, dropped %d; want true, 3", ok, dropped)
	}
	if n := g.takeDropped(); n != 0 {
		t.Errorf("takeDropped = %d; want 0", n)
	}
}

// FuzzDecodeEvent checks that any params give a valid entry: raw text that is the
// event as JSON (or cut with the marker), an object body, and frame ids as decoding
// the params with encoding/json finds them.
func FuzzDecodeEvent(f *testing.F) {
	f.Add("Network.requestWillBeSent", "S", []byte(`{"requestId":"1","loaderId":"L","frameId":"F"}`), 1024)
	f.Add("Page.frameNavigated", "", []byte(`{"frame":{"id":"F","loaderId":"L"},"frame":{"id":"G"}}`), 1024)
	f.Add("Runtime.consoleAPICalled", "S\"", []byte(`{"args":[{"value":"\u00e9"}]}`), 40)
	f.Add("Page.loadEventFired", "S", []byte(`nope`), 10)
	f.Fuzz(func(t *testing.T, method, cdpSession string, params []byte, limit int) {
		limit = max(limit%(4<<10), 0)
		ev := bb.BrowserEvent{Method: method, CDPSessionID: cdpSession, Params: params, Size: len(params)}
		m, ids := decodeEvent(&ev, limit)
		if !json.Valid(m.Body) || m.Body[0] != '{' {
			t.Fatalf("body %q is not an object", m.Body)
		}
		if strings.HasSuffix(m.Raw, bb.TruncationMarker) {
			return
		}
		if !json.Valid([]byte(m.Raw)) {
			if json.Valid(params) {
				t.Fatalf("raw %q is not JSON", m.Raw)
			}
			return
		}
		if string(m.Body) == `{}` {
			return
		}
		var want frameIDs
		if method == "Page.frameNavigated" {
			// Exact names, the last one counting: as decoding into maps.
			var p, frame map[string]json.RawMessage
			_ = json.Unmarshal(m.Body, &p) // the body is a valid object
			_ = json.Unmarshal(p["frame"], &frame)
			str := func(raw json.RawMessage) string {
				var s string
				_ = json.Unmarshal(raw, &s) // not a string: ""
				return s
			}
			want = frameIDs{FrameID: str(frame["id"]), LoaderID: str(frame["loaderId"])}
		} else {
			_ = json.Unmarshal(m.Body, &want) // the body is a valid object
		}
		if ids != want {
			t.Errorf("ids = %+v; want %+v", ids, want)
		}
	})
}
