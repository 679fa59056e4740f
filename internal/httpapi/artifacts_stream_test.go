package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fsblob"
)

// hookWriter calls onWrite before the handler's first write to the response.
type hookWriter struct {
	http.ResponseWriter
	once    sync.Once
	onWrite func()
}

func (w *hookWriter) Write(b []byte) (int, error) {
	w.once.Do(w.onWrite)
	return w.ResponseWriter.Write(b)
}

// hookedServer is a real HTTP server for e's API whose handlers call onWrite (given the
// request path) before their first write.
func hookedServer(t *testing.T, e *artifactEnv, onWrite func(path string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.srv.Handler().ServeHTTP(&hookWriter{ResponseWriter: w, onWrite: func() { onWrite(r.URL.Path) }}, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path, key string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-BB-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// TestLogsStreamed is the reproduction of security review F5.2 for /logs: the handler
// read a session's whole log, then encoded it into a buffer (16 concurrent reads of a
// 33 MB log took 1.2 GB). Now its first write comes after one page of the store: the
// logs are deleted at that moment, and the response has only what was read before.
func TestLogsStreamed(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	const n = 200
	at := time.UnixMilli(1700000000000)
	for i := range n {
		req := fmt.Sprintf(`{"id":%d,"method":"Runtime.evaluate","params":{"expression":"%s"}}`, i+1, strings.Repeat("x", 1000))
		e.art.RecordCDP(bb.CDPExchange{SessionID: id, Method: "Runtime.evaluate", Request: []byte(req), RequestSize: len(req), RequestAt: at})
	}
	if logs := e.getList(t, "/v1/sessions/"+id+"/logs", e.key); len(logs) != n {
		t.Fatalf("%d logs; want %d", len(logs), n)
	}
	srv := hookedServer(t, e, func(string) {
		if err := e.db.PurgeArtifacts(t.Context(), id, time.Now()); err != nil {
			t.Error(err)
		}
	})
	res, body, err := get(t, srv, "/v1/sessions/"+id+"/logs", e.key)
	if err != nil {
		t.Fatal(err)
	}
	var logs []map[string]any
	if err := json.Unmarshal(body, &logs); err != nil || res.StatusCode != 200 {
		t.Fatalf("logs = %d %.200s: %v", res.StatusCode, body, err)
	}
	if len(logs) == 0 || len(logs) > 64 {
		t.Errorf("the handler read %d of %d logs before its first write; want at most a page", len(logs), n)
	}
	for i, l := range logs {
		if want := fmt.Sprintf(`{"id":%d,`, i+1); !strings.HasPrefix(l["request"].(map[string]any)["rawBody"].(string), want) {
			t.Fatalf("log %d is not the %d-th command", i, i+1)
		}
	}
}

// recordingChunk stores events as the n-th recording chunk of a session, as
// internal/artifacts does.
func putRecordingChunk(t *testing.T, blobs *fsblob.Store, id string, n int, events []bb.RecordingEvent) {
	t.Helper()
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(t.Context(), fmt.Sprintf("sessions/%s/recording/%010d.json", id, n), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestRecordingStreamed is the reproduction of F5.2 for /recording: the handler read
// every chunk before its first write. Now a chunk is read when the merge reaches it: the
// chunks are deleted at the first write, and the response is cut (an error once the
// status is sent aborts the connection).
func TestRecordingStreamed(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	blobs, err := fsblob.New(e.blobs)
	if err != nil {
		t.Fatal(err)
	}
	const chunks = 20
	for c := range chunks {
		var evs []bb.RecordingEvent
		for i := range 10 {
			evs = append(evs, bb.RecordingEvent{Type: 3, Timestamp: int64(1000*c + i), Data: json.RawMessage(`{"source":1}`)})
		}
		putRecordingChunk(t, blobs, id, c, evs)
	}
	if got := e.getList(t, "/v1/sessions/"+id+"/recording", e.key); len(got) != chunks*10 {
		t.Fatalf("%d events; want %d", len(got), chunks*10)
	}
	srv := hookedServer(t, e, func(string) {
		if err := blobs.DeletePrefix(t.Context(), "sessions/"+id+"/recording/"); err != nil {
			t.Error(err)
		}
	})
	res, body, err := get(t, srv, "/v1/sessions/"+id+"/recording", e.key)
	if err == nil && json.Valid(body) {
		t.Fatalf("recording = %d, %d bytes of valid JSON: the handler had read every chunk before its first write", res.StatusCode, len(body))
	}
	if res != nil && res.StatusCode != 200 {
		t.Errorf("status %d; want 200, then a cut body", res.StatusCode)
	}
	if !strings.Contains(e.logs.String(), "response cut") {
		t.Errorf("the cut response was not logged:\n%s", e.logs.String())
	}
}

// TestRecordingOrder: the merged chunks give the events in the order of a stable sort
// by timestamp, whatever the order inside and across chunks (tabs send theirs
// independently; a page's clock may jump).
func TestRecordingOrder(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	blobs, err := fsblob.New(e.blobs)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(ts int64, tag string) bb.RecordingEvent {
		return bb.RecordingEvent{Type: 3, Timestamp: ts, Data: json.RawMessage(`{"tag":"` + tag + `"}`)}
	}
	chunks := [][]bb.RecordingEvent{
		{ev(10, "a"), ev(5, "b"), ev(10, "c")},
		{},
		{ev(7, "d"), ev(10, "e"), ev(1, "f")},
		{ev(20, "g"), ev(10, "h")},
		{ev(30, "i")},
		{ev(5, "j"), ev(30, "k")},
	}
	var all []bb.RecordingEvent
	for n, c := range chunks {
		putRecordingChunk(t, blobs, id, n, c)
		all = append(all, c...)
	}
	slices.SortStableFunc(all, func(x, y bb.RecordingEvent) int { return int(x.Timestamp - y.Timestamp) })
	var want []any
	for _, e := range all {
		var data any
		json.Unmarshal(e.Data, &data)
		want = append(want, map[string]any{"type": 3.0, "timestamp": float64(e.Timestamp), "sessionId": id, "data": data})
	}
	got := e.getList(t, "/v1/sessions/"+id+"/recording", e.key)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recording (-want +got):\n%s", diff)
	}
}

// TestArtifactReadsBounded: at most DefaultMaxArtifactReads logs and recordings are read
// at once; one more gets 503 with x-should-retry: true, in the API's error shape.
func TestArtifactReadsBounded(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	e.art.RecordCDP(bb.CDPExchange{SessionID: id, Method: "X", Request: []byte(`{}`), RequestSize: 2, RequestAt: time.Now()})
	started, unblock := make(chan struct{}), make(chan struct{})
	srv := hookedServer(t, e, func(string) {
		started <- struct{}{}
		<-unblock
	})
	const slots = 4
	var wg sync.WaitGroup
	for i := range slots {
		path := "/v1/sessions/" + id + "/logs"
		if i%2 == 1 {
			path = "/v1/sessions/" + id + "/recording"
		}
		wg.Go(func() {
			if res, body, err := get(t, srv, path, e.key); err != nil || res.StatusCode != 200 {
				t.Errorf("held read %s: %v %s", path, err, body)
			}
		})
	}
	for range slots {
		<-started
	}
	// The API key check and the error go through the same handler: only a read writes
	// after a slot is taken, so the hook lets the rest through.
	over := e.raw(t, "GET", "/v1/sessions/"+id+"/logs", e.key, nil, nil)
	close(unblock)
	wg.Wait()
	wantError(t, over, http.StatusServiceUnavailable)
	if got := over.Header().Get("x-should-retry"); got != "true" {
		t.Errorf("x-should-retry = %q; want true", got)
	}
	// The slots are free again.
	e.getList(t, "/v1/sessions/"+id+"/logs", e.key)
}

// TestSlowReaderLosesSlot: a client that stops reading a streamed response does not
// hold its artifact read slot for ever: a write that takes longer than the stream write
// timeout ends the response.
func TestSlowReaderLosesSlot(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	e.srv.artifactReads = make(chan struct{}, 1) // one slot, for the stalled reader
	e.srv.streamWriteTimeout = time.Second
	id := e.create(t, `{}`)
	at := time.UnixMilli(1700000000000)
	for i := range 500 { // 30 MB: more than the sockets' buffers hold
		req := fmt.Sprintf(`{"id":%d,"method":"Runtime.evaluate","params":{"expression":"%s"}}`, i+1, strings.Repeat("x", 60000))
		e.art.RecordCDP(bb.CDPExchange{SessionID: id, Method: "Runtime.evaluate", Request: []byte(req), RequestSize: len(req), RequestAt: at})
	}
	srv := httptest.NewServer(e.srv.Handler())
	t.Cleanup(srv.Close)
	// A client that sends the request and never reads.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/sessions/%s/logs HTTP/1.1\r\nHost: x\r\nX-BB-API-Key: %s\r\n\r\n", id, e.key)
	status := func() int {
		t.Helper()
		res, _, err := get(t, srv, "/v1/sessions/"+id+"/recording", e.key)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("no %d within 30 s", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(http.StatusServiceUnavailable) // the stalled read holds the slot
	wait(http.StatusOK)                 // and loses it
}
