package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// truncatedBody stands for params or result that were too large to keep.
func truncatedBody(size int) json.RawMessage {
	return json.RawMessage(`{"browserdTruncated":true,"size":` + strconv.Itoa(size) + `}`)
}

// logWriter writes CDP logs in batches from a bounded queue, so that the relay never
// waits for the store. The queue is a slice under a mutex: enqueueing wakes the writer
// only when the queue was empty (or reaches writeEarly), and the writer then gathers
// for batchDelay and takes the whole queue at once. A channel woke the writer for
// every exchange, which cost more CPU than the exchange itself.
type logWriter struct {
	store      bb.ArtifactStore
	log        *slog.Logger
	payload    int
	perSession int64
	queueLimit int64

	wake    chan struct{} // capacity 1: the queue has work
	flushes chan flushReq

	mu        sync.Mutex
	q         []logItem      // in arrival order
	queued    int64          // bytes in q
	evQueued  int64          // bytes of events in q
	evCount   int            // events in q
	dropped   map[string]int // exchanges dropped on a full queue, by session
	evDropped map[string]int // events dropped on a full queue, by session

	// Owned by run.
	sessions map[string]*logState
	spare    []logItem // the queue run took last, emptied, to swap in next
}

// logItem is one entry of the writer's queue: a client's command and its response, a
// browser event, or the target of a client's CDP session (events.go).
type logItem struct {
	kind itemKind
	ex   bb.CDPExchange  // itemCommand
	ev   bb.BrowserEvent // itemEvent; itemTarget: SessionID, CDPSessionID, TargetID
}

type itemKind uint8

const (
	itemCommand itemKind = iota
	itemEvent
	itemTarget
)

// maxQueued bounds the exchanges waiting in the queue, whatever their size.
const maxQueued = 4096

// writeEarly is the queue length at which the writer stops gathering and writes.
const writeEarly = 1024

type flushReq struct {
	sessionID string
	forget    bool // the session ended: drop its state after the flush
	done      chan struct{}
}

// logState is the writer's view of one session.
type logState struct {
	pages     map[pageKey]int
	next      int               // the next pageId
	targets   map[string]string // a client's CDP session → its target
	bytes     int64
	evBytes   int64
	limited   bool // the limit marker was written; later logs are dropped
	evLimited bool // the events' limit marker was written; later events are dropped
}

func newLogWriter(store bb.ArtifactStore, log *slog.Logger, payload int, perSession, queueLimit int64) *logWriter {
	return &logWriter{
		store: store, log: log, payload: payload, perSession: perSession, queueLimit: queueLimit,
		wake:      make(chan struct{}, 1),
		flushes:   make(chan flushReq),
		dropped:   make(map[string]int),
		evDropped: make(map[string]int),
		sessions:  make(map[string]*logState),
	}
}

func (w *logWriter) enqueue(ex bb.CDPExchange) {
	n := int64(len(ex.Request) + len(ex.Response))
	w.mu.Lock()
	if w.queued+n > w.queueLimit || len(w.q) >= maxQueued {
		w.dropped[ex.SessionID]++
		w.mu.Unlock()
		return
	}
	w.q = append(w.q, logItem{kind: itemCommand, ex: ex})
	w.queued += n
	w.poke(len(w.q))
}

// poke wakes the writer when the queue, now of n entries, was empty or reached
// writeEarly. The caller holds w.mu, which poke releases.
func (w *logWriter) poke(n int) {
	w.mu.Unlock()
	if n == 1 || n == writeEarly {
		select {
		case w.wake <- struct{}{}:
		default: // already poked
		}
	}
}

// take swaps the queue for an empty one and returns what was queued.
func (w *logWriter) take() []logItem {
	w.mu.Lock()
	q := w.q
	w.q, w.spare = w.spare[:0], nil
	w.queued, w.evQueued, w.evCount = 0, 0, 0
	w.mu.Unlock()
	return q
}

// flush waits until everything queued so far is written (or ctx ends).
func (w *logWriter) flush(ctx context.Context, sessionID string, forget bool) {
	req := flushReq{sessionID: sessionID, forget: forget, done: make(chan struct{})}
	select {
	case w.flushes <- req:
	case <-ctx.Done():
		return
	}
	select {
	case <-req.done:
	case <-ctx.Done():
	}
}

// batchDelay is how long the writer gathers entries before a write.
const batchDelay = 100 * time.Millisecond

// run writes until ctx is cancelled, then writes what is queued and returns.
func (w *logWriter) run(ctx context.Context) {
	var batch []bb.SessionLog
	var backoff time.Duration // of the retries of batch; 0 after a write went through
	for {
		var req *flushReq
		if len(batch) == 0 { // else a batch kept for a retry is written now
			select {
			case <-w.wake:
				// Gather for a moment: one transaction for many entries costs the store
				// far less than one each. Readers flush first, so they never wait for it.
				t := time.NewTimer(batchDelay)
				select {
				case r := <-w.flushes:
					req = &r
				case <-w.wake: // writeEarly reached
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			case r := <-w.flushes:
				req = &r
			case <-ctx.Done():
			}
		}
		// A batch kept for a retry takes more only up to maxQueued entries; beyond, the
		// queue fills and its drops are counted and marked (addDrops).
		if len(batch) < maxQueued {
			q := w.take()
			for i := range q {
				switch it := &q[i]; it.kind {
				case itemCommand:
					batch = w.add(batch, it.ex)
				case itemEvent:
					batch = w.addEvent(batch, &it.ev)
				case itemTarget:
					w.addTarget(&it.ev)
				}
			}
			clear(q) // no references to written copies
			w.spare = q[:0]
		}
		batch = w.addDrops(batch)
		keep := false
		if len(batch) > 0 {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if err := w.store.AppendSessionLogs(wctx, batch); err != nil {
				w.log.Error("write session logs", "entries", len(batch), "err", err)
				// The store cannot take writes now (the database restarting): keep the
				// batch and try again, while the queue holds what comes next; what it
				// cannot hold is counted and marked, never silently lost.
				keep = bb.RetryOf(err) && ctx.Err() == nil
			}
			cancel()
			if !keep {
				clear(batch)
				batch = batch[:0]
			}
		}
		if req != nil {
			w.done(*req)
		}
		if ctx.Err() != nil {
			return
		}
		if keep {
			backoff = min(max(2*backoff, retryFirst), retryMax)
			w.pause(ctx, backoff)
		} else {
			backoff = 0
		}
	}
}

// Backoff of the retries of a batch the store refused for now.
const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 5 * time.Second
)

// done answers a flush request.
func (w *logWriter) done(req flushReq) {
	if req.forget {
		delete(w.sessions, req.sessionID)
	}
	close(req.done)
}

// pause waits d (or until ctx ends) before a retry, answering flush requests at once:
// a reader must not wait for a store that is down.
func (w *logWriter) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case r := <-w.flushes:
			w.done(r)
		}
	}
}

// addDrops adds a marker entry for each session that lost exchanges on a full queue.
func (w *logWriter) addDrops(batch []bb.SessionLog) []bb.SessionLog {
	w.mu.Lock()
	drops, evDrops := w.dropped, w.evDropped
	if len(drops) > 0 {
		w.dropped = make(map[string]int)
	}
	if len(evDrops) > 0 {
		w.evDropped = make(map[string]int)
	}
	w.mu.Unlock()
	now := time.Now()
	for id, n := range drops {
		batch = append(batch, marker(id, "browserd.logsDropped", now, fmt.Sprintf(`{"dropped":%d,"reason":"the log queue was full"}`, n)))
	}
	for id, n := range evDrops {
		batch = append(batch, marker(id, "browserd.logsDropped", now, fmt.Sprintf(`{"dropped":%d,"events":true,"reason":"the log queue had no more room for browser events"}`, n)))
	}
	return batch
}

// marker is a log entry of browserd's own (method browserd.…) whose params are body.
func marker(sessionID, method string, at time.Time, body string) bb.SessionLog {
	return bb.SessionLog{SessionID: sessionID, Method: method,
		Request: &bb.LogMessage{Body: json.RawMessage(body), Raw: body, Timestamp: at}}
}

// state returns the writer's view of a session, made on first use.
func (w *logWriter) state(sessionID string) *logState {
	st := w.sessions[sessionID]
	if st == nil {
		st = &logState{pages: map[pageKey]int{{}: 0}, next: 1}
		w.sessions[sessionID] = st
	}
	return st
}

// page returns the pageId of a page key, numbering a new one next.
func (st *logState) page(key pageKey) int {
	page, ok := st.pages[key]
	if !ok {
		page = st.next
		st.next++
		st.pages[key] = page
	}
	return page
}

// limit writes the marker of the session's log limit, after which nothing more is
// logged, and returns the batch.
func (w *logWriter) limit(batch []bb.SessionLog, st *logState, sessionID string, at time.Time) []bb.SessionLog {
	st.limited = true
	return append(batch, marker(sessionID, "browserd.logLimitReached", at, fmt.Sprintf(
		`{"limitBytes":%d,"reason":"the session's log limit was reached; later commands and events are not logged"}`, w.perSession)))
}

// add decodes ex into a SessionLog and appends it, unless the session's limit is spent.
func (w *logWriter) add(batch []bb.SessionLog, ex bb.CDPExchange) []bb.SessionLog {
	st := w.state(ex.SessionID)
	if st.limited {
		return batch
	}
	size := int64(len(ex.Request) + len(ex.Response))
	if st.bytes+size > w.perSession {
		return w.limit(batch, st, ex.SessionID, ex.RequestAt)
	}
	st.bytes += size
	page := st.page(st.sessionKey(ex.CDPSessionID))
	e := bb.SessionLog{SessionID: ex.SessionID, Method: ex.Method, PageID: page, CDPSessionID: ex.CDPSessionID}
	var reqIDs, resIDs frameIDs
	e.Request, reqIDs = decodeLogMessage(ex.Request, ex.RequestSize, ex.RequestAt, "params")
	if ex.Response != nil {
		e.Response, resIDs = decodeLogMessage(ex.Response, ex.ResponseSize, ex.ResponseAt, "result")
	}
	e.FrameID = firstNonEmpty(resIDs.FrameID, reqIDs.FrameID)
	e.LoaderID = firstNonEmpty(resIDs.LoaderID, reqIDs.LoaderID)
	return append(batch, e)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type frameIDs struct {
	FrameID  string `json:"frameId"`
	LoaderID string `json:"loaderId"`
}

// decodeLogMessage turns a copied CDP message into a LogMessage: field ("params" or
// "result") becomes the body; an error response's body is {"error":…}. The body is
// a part of raw, which the caller gives up (logbody.go reads it without copies).
func decodeLogMessage(raw []byte, size int, at time.Time, field string) (*bb.LogMessage, frameIDs) {
	m := &bb.LogMessage{Timestamp: at}
	if len(raw) < size {
		m.Raw = cutUTF8(raw) + bb.TruncationMarker
		m.Body = truncatedBody(size)
		return m, frameIDs{}
	}
	m.Raw = string(raw)
	m.Body = logBody(raw, field)
	return m, bodyFrameIDs(m.Body)
}

// cutUTF8 returns b as a string without a trailing incomplete UTF-8 sequence.
func cutUTF8(b []byte) string {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, n := utf8.DecodeLastRune(b); r != utf8.RuneError || n > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// logPage is how many logs a reader takes from the store at a time. A log holds at most
// LogPayloadLimit of raw text per message, and its decoded body beside it.
const logPage = 32

// logsReadable checks that a session's logs may be read by projectID: the session is the
// project's, was created with logSession on, and its artifacts are not purged.
func (a *Service) logsReadable(ctx context.Context, projectID, id string) error {
	s, err := a.session(ctx, projectID, id)
	if err != nil {
		return err
	}
	if !s.Settings.LogSessionEnabled() {
		return bb.Errorf(bb.CodeUnprocessable, "Logs are not available: the session was created with logSession: false")
	}
	return a.checkPurged(ctx, id, "logs")
}

// Logs returns a session's CDP logs (GET /v1/sessions/{id}/logs) in order, read from the
// store a page at a time as the sequence is consumed, so that a reader never holds a
// session's whole log. Errors found before (unknown session, logSession:false,
// CodeUnprocessable for expired artifacts) are returned at once; a store error while
// reading is the sequence's last element.
func (a *Service) Logs(ctx context.Context, projectID, id string) (iter.Seq2[bb.SessionLog, error], error) {
	if err := a.logsReadable(ctx, projectID, id); err != nil {
		return nil, err
	}
	if a.liveRun(id) != nil {
		a.logs.flush(ctx, id, false) // read your own commands
	}
	return func(yield func(bb.SessionLog, error) bool) {
		for after := int64(0); ; {
			page, err := a.cfg.Store.SessionLogs(ctx, id, after, logPage)
			if err != nil {
				yield(bb.SessionLog{}, err)
				return
			}
			for _, l := range page {
				if !yield(l, nil) {
					return
				}
			}
			if len(page) < logPage {
				return
			}
			after = page[len(page)-1].Seq
		}
	}, nil
}
