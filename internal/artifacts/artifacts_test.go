package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

func TestDownloadName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.pdf", "report-1719265797164.pdf"},
		{"archive.tar.gz", "archive.tar-1719265797164.gz"},
		{"README", "README-1719265797164"},
		{".env", ".env-1719265797164"},
		{"a b (1).csv", "a b (1)-1719265797164.csv"},
	}
	for _, tt := range tests {
		if got := DownloadName(tt.in, 1719265797164); got != tt.want {
			t.Errorf("DownloadName(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// memLogs is an ArtifactStore keeping logs in memory.
type memLogs struct {
	bb.ArtifactStore // other methods are not called
	mu               sync.Mutex
	logs             []bb.SessionLog
}

func (m *memLogs) AppendSessionLogs(ctx context.Context, logs []bb.SessionLog) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs = append(m.logs, logs...)
	return nil
}

func (m *memLogs) all() []bb.SessionLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.logs)
}

func TestLogWriter(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 32, 280, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	at := time.UnixMilli(1700000000000)
	// ex is an exchange as the gateway makes it: copies cut to 64 bytes, whole sizes.
	ex := func(method, cdpSession, req, res string, _ int) bb.CDPExchange {
		cut := func(s string) []byte { return []byte(s[:min(len(s), 64)]) }
		e := bb.CDPExchange{SessionID: "s", Method: method, CDPSessionID: cdpSession, Request: cut(req), RequestSize: len(req), RequestAt: at}
		if res != "" {
			e.Response, e.ResponseSize, e.ResponseAt = cut(res), len(res), at.Add(time.Millisecond)
		}
		return e
	}
	w.enqueue(ex("Target.getTargets", "", `{"id":1,"method":"Target.getTargets"}`, `{"id":1,"result":{}}`, 20))
	w.enqueue(ex("Page.navigate", "A", `{"id":2,"method":"Page.navigate","params":{"url":"u"},"sessionId":"A"}`, `{"id":2,"result":{"frameId":"F"}}`, 33))
	w.enqueue(ex("Runtime.evaluate", "B", `{"id":3,"params":{"frameId":"G"}}`, `{"id":3,"error":{"code":-1}}`, 46))
	w.enqueue(ex("Browser.close", "", `{"id":4,"method":"Browser.close"}`, "", 0))
	w.enqueue(ex("Page.reload", "A", `{"id":5,"method":"Page.reload"}`, `{"id":5,"result":{}}`, 20)) // over 200 bytes in all
	w.enqueue(ex("Page.reload", "A", `{"id":6,"method":"Page.reload"}`, `{"id":6,"result":{}}`, 20))
	w.flush(context.Background(), "s", true)
	got := st.all()
	type summary struct {
		Method      string
		Page        int
		Frame       string
		Body, Reply string
		NoResponse  bool
	}
	var sums []summary
	for _, l := range got {
		s := summary{Method: l.Method, Page: l.PageID, Frame: l.FrameID, Body: string(l.Request.Body), NoResponse: l.Response == nil}
		if l.Response != nil {
			s.Reply = string(l.Response.Body)
		}
		sums = append(sums, s)
	}
	want := []summary{
		{Method: "Target.getTargets", Page: 0, Body: `{}`, Reply: `{}`},
		{Method: "Page.navigate", Page: 1, Frame: "F", Body: `{"browserdTruncated":true,"size":70}`, Reply: `{"frameId":"F"}`},
		{Method: "Runtime.evaluate", Page: 2, Frame: "G", Body: `{"frameId":"G"}`, Reply: `{"error":{"code":-1}}`},
		{Method: "Browser.close", Page: 0, Body: `{}`, NoResponse: true},
		{Method: "browserd.logLimitReached", Body: `{"limitBytes":280,"reason":"the session's log limit was reached; later commands and events are not logged"}`, NoResponse: true},
	}
	if len(sums) != len(want) {
		t.Fatalf("got %d logs %+v; want %d", len(sums), sums, len(want))
	}
	for i := range want {
		if sums[i] != want[i] {
			t.Errorf("log %d = %+v; want %+v", i, sums[i], want[i])
		}
	}
	if raw := got[1].Request.Raw; !strings.HasSuffix(raw, bb.TruncationMarker) || !json.Valid(got[1].Request.Body) {
		t.Errorf("truncated raw = %q", raw)
	}
}

// A full queue drops exchanges without blocking and says so in the log.
func TestLogWriterQueueFull(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1<<20, 100) // 100 bytes of queue
	for range 5 {
		w.enqueue(bb.CDPExchange{SessionID: "s", Method: "M", Request: []byte(strings.Repeat("x", 40)), RequestSize: 40, RequestAt: time.Now()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	w.flush(context.Background(), "s", false)
	cancel()
	<-done
	got := st.all()
	var methods []string
	for _, l := range got {
		methods = append(methods, l.Method)
	}
	if want := []string{"M", "M", "browserd.logsDropped"}; !slices.Equal(methods, want) {
		t.Fatalf("logs %v; want %v", methods, want)
	}
	if body := string(got[2].Request.Body); body != `{"dropped":3,"reason":"the log queue was full"}` {
		t.Errorf("drop marker = %s", body)
	}
}

// Exchanges queued over many batches, some while the writer writes, are all written
// in order; Close (the context ending) writes what is still queued.
func TestLogWriterBatches(t *testing.T) {
	st := &memLogs{}
	w := newLogWriter(st, nil, 1<<10, 1<<30, 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	const n = 3 * maxQueued
	for i := range n {
		req := []byte(`{"id":` + strconv.Itoa(i) + `,"method":"M"}`)
		w.enqueue(bb.CDPExchange{SessionID: "s", Method: "M", Request: req, RequestSize: len(req), RequestAt: time.Now()})
		if i%(writeEarly/2) == 0 {
			time.Sleep(20 * time.Millisecond) // less than batchDelay: writeEarly ends some gathers
		}
		if i == n/2 {
			w.flush(context.Background(), "s", false)
		}
	}
	cancel()
	<-done
	got := st.all()
	if len(got) != n {
		t.Fatalf("%d logs written; want %d", len(got), n)
	}
	for i, l := range got {
		if want := `{"id":` + strconv.Itoa(i) + `,"method":"M"}`; l.Request.Raw != want {
			t.Fatalf("log %d = %s; want %s", i, l.Request.Raw, want)
		}
	}
}

// downLogs is a memLogs whose writes fail as a stopped database's do while down is set.
type downLogs struct {
	memLogs
	down  atomic.Bool
	tries atomic.Int32
}

func (d *downLogs) AppendSessionLogs(ctx context.Context, logs []bb.SessionLog) error {
	d.tries.Add(1)
	if d.down.Load() {
		return &bb.Error{Code: bb.CodeUnavailable, Retry: true, Message: "the database is unavailable"}
	}
	return d.memLogs.AppendSessionLogs(ctx, logs)
}

// TestLogWriterStoreDown: logs written while the store is down (a write that asks for
// a retry) are kept and written once it is back, in order; a flush meanwhile returns.
func TestLogWriterStoreDown(t *testing.T) {
	st := &downLogs{}
	st.down.Store(true)
	w := newLogWriter(st, slog.New(slog.DiscardHandler), 1<<10, 1<<20, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var want []string
	for i := range 5 {
		m := fmt.Sprintf("M%d", i)
		want = append(want, m)
		w.enqueue(bb.CDPExchange{SessionID: "s", Method: m, Request: []byte(`{"id":1}`), RequestSize: 8, RequestAt: time.Now()})
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	w.flush(fctx, "s", false) // must not hang on the down store
	err := fctx.Err()
	fcancel()
	if err != nil {
		t.Fatal("flush waited for a store that is down")
	}
	for st.tries.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(st.all()); n != 0 {
		t.Fatalf("%d logs stored while down", n)
	}
	st.down.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	for len(st.all()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, l := range st.all() {
		got = append(got, l.Method)
	}
	if !slices.Equal(got, want) {
		t.Errorf("logs after the store came back = %v; want %v", got, want)
	}
}
