package artifacts

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSession returns a real SQLite store holding one running session.
func benchSession(b *testing.B) (bb.ArtifactStore, string) {
	db := sqlitetest.Open(b)
	p, _ := sqlitetest.Project(b, db, 1000)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusRunning, CreatedAt: now, UpdatedAt: now,
		StartedAt: now, ExpiresAt: now.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600}
	if err := db.CreateSession(b.Context(), s, 1000); err != nil {
		b.Fatal(err)
	}
	return db, s.ID
}

// evalExchange is the exchange `browserd bench --phases cdp` logs: Runtime.evaluate
// of "1+1" on a page, as the gateway copies it.
func evalExchange(sessionID string, id int) bb.CDPExchange {
	const page = "8F1C2B3D4E5F60718293A4B5C6D7E8F9"
	n := strconv.Itoa(id)
	req := []byte(`{"id":` + n + `,"method":"Runtime.evaluate","params":{"expression":"1+1"},"sessionId":"` + page + `"}`)
	res := []byte(`{"id":` + n + `,"result":{"result":{"type":"number","value":2,"description":"2"}},"sessionId":"` + page + `"}`)
	now := time.Now()
	return bb.CDPExchange{SessionID: sessionID, Method: "Runtime.evaluate", CDPSessionID: page,
		Request: req, RequestSize: len(req), RequestAt: now, Response: res, ResponseSize: len(res), ResponseAt: now}
}

// BenchmarkLogWriter measures the log writer's CPU per logged exchange on real SQLite:
// enqueueing (the relay's side), pairing into a SessionLog and the store's insert
// (the writer goroutine). cpu-ns/op is the whole process's CPU, the writer's included:
// the benchmark flushes before it stops the clock. The exchanges are queued at about
// the rate of `browserd bench`'s round trips (4000/s, in bursts of 8); it fails if any
// was dropped. Run it with -benchtime 20000x or so: each op takes 250 µs of wall time.
func BenchmarkLogWriter(b *testing.B) {
	db, id := runLogWriter(b, func(id string) func(*logWriter, int) {
		exs := make([]bb.CDPExchange, 256)
		for i := range exs {
			exs[i] = evalExchange(id, i+1)
		}
		return func(w *logWriter, i int) { w.enqueue(exs[i%len(exs)]) }
	})
	for after := int64(0); ; {
		page, err := db.SessionLogs(b.Context(), id, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range page {
			if l.Method != "Runtime.evaluate" {
				b.Fatalf("the writer logged %s %s: the benchmark queues too fast", l.Method, l.Request.Body)
			}
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
	}
}

// BenchmarkDecodeLogMessage measures turning a copied response into a log message.
func BenchmarkDecodeLogMessage(b *testing.B) {
	ex := evalExchange("s", 7)
	b.ReportAllocs()
	for b.Loop() {
		decodeLogMessage(ex.Response, ex.ResponseSize, ex.ResponseAt, "result")
	}
}

// BenchmarkAppendSessionLogs measures the store's insert per log, in batches of 256.
func BenchmarkAppendSessionLogs(b *testing.B) {
	db, id := benchSession(b)
	w := newLogWriter(db, nil, 64<<10, 1<<40, 64<<20)
	batch := make([]bb.SessionLog, 0, 256)
	for i := range 256 {
		batch = w.add(batch, evalExchange(id, i+1))
	}
	b.ReportAllocs()
	cpu := cpuTime()
	n := 0
	for b.Loop() {
		if err := db.AppendSessionLogs(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/log")
}

// requestEvent is a Network.requestWillBeSent of an image as Chromium sends it (1.3 KB).
func requestEvent(sessionID string, id int) bb.BrowserEvent {
	params := []byte(`{"requestId":"1234.` + strconv.Itoa(id) + `","loaderId":"9F8E7D6C5B4A39281706F5E4D3C2B1A0","documentURL":"http://127.0.0.1:41234/?r=7",` +
		`"request":{"url":"http://127.0.0.1:41234/img/7.png?r=7","method":"GET","headers":{"Referer":"http://127.0.0.1:41234/?r=7",` +
		`"User-Agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36","sec-ch-ua":"\"Chromium\";v=\"156\", \"Not-A.Brand\";v=\"24\"",` +
		`"sec-ch-ua-mobile":"?0","sec-ch-ua-platform":"\"Linux\""},"mixedContentType":"none","initialPriority":"Low","referrerPolicy":"strict-origin-when-cross-origin","isSameSite":true},` +
		`"timestamp":123456.789012,"wallTime":1764921600.123456,"initiator":{"type":"parser","url":"http://127.0.0.1:41234/?r=7","lineNumber":0,"columnNumber":512},` +
		`"redirectHasExtraInfo":false,"type":"Image","frameId":"9F8E7D6C5B4A39281706F5E4D3C2B1A0","hasUserGesture":false}`)
	return bb.BrowserEvent{SessionID: sessionID, TargetID: "9F8E7D6C5B4A39281706F5E4D3C2B1A0", CDPSessionID: "0123456789ABCDEF0123456789ABCDEF",
		Method: "Network.requestWillBeSent", Params: params, Size: len(params), At: time.Now()}
}

// BenchmarkLogWriterEvents is BenchmarkLogWriter for browser events: a page's network
// requests (1.3 KB each), queued 8 every 2 ms.
func BenchmarkLogWriterEvents(b *testing.B) {
	runLogWriter(b, func(id string) func(*logWriter, int) {
		evs := make([]bb.BrowserEvent, 256)
		for i := range evs {
			evs[i] = requestEvent(id, i+1)
		}
		return func(w *logWriter, i int) { w.enqueueEvent(evs[i%len(evs)]) }
	})
}

// runLogWriter runs a log writer on a new session's store and, until the benchmark
// ends, queues what prepare's function queues, 8 every 2 ms; it reports the process's
// CPU per entry, everything written.
func runLogWriter(b *testing.B, prepare func(id string) func(w *logWriter, i int)) (bb.ArtifactStore, string) {
	db, id := benchSession(b)
	w := newLogWriter(db, nil, 64<<10, 1<<40, 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	queue := prepare(id)
	b.ReportAllocs()
	cpu := cpuTime()
	i := 0
	for b.Loop() {
		queue(w, i)
		if i++; i%8 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	w.flush(context.Background(), id, false)
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	return db, id
}

// BenchmarkDecodeEvent measures turning a browser event into a log message.
func BenchmarkDecodeEvent(b *testing.B) {
	ev := requestEvent("s", 7)
	b.ReportAllocs()
	for b.Loop() {
		decodeEvent(&ev, 64<<10)
	}
}
