package artifacts

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// This file puts the browser's events, which the session agent hears on its own CDP
// connection (bb.AgentOptions.Log), in the session logs beside the clients' commands:
// one entry per event, numbered by target so that a tab's events and its commands
// share a pageId, under limits of their own so that a page that floods its console
// never starves the command log (docs/COMPATIBILITY.md, "Session logs").

// Limits of the browser events in the logs.
const (
	// eventRate and eventBurst bound the events one session logs: eventRate a second on
	// average, eventBurst at once (a page load with hundreds of requests). Beyond, the
	// events are dropped and counted in a browserd.logsDropped entry.
	eventRate  = 1000
	eventBurst = 5000
	// Events may take at most eventShareNum/eventShareDen of a session's log limit and
	// 1/2 of the writer's queue; the rest is kept for commands.
	eventShareNum, eventShareDen = 3, 4
	// maxTargets bounds the client CDP sessions whose targets a session's log remembers.
	maxTargets = 4096
)

// pageKey names a page of the logs: a target, or a client's CDP session whose target
// is not known. The zero key is the browser, pageId 0.
type pageKey struct {
	target bool
	id     string
}

// sessionKey returns the page key of a client's CDP session.
func (st *logState) sessionKey(cdpSession string) pageKey {
	if cdpSession == "" {
		return pageKey{}
	}
	if t, ok := st.targets[cdpSession]; ok {
		return pageKey{target: true, id: t}
	}
	return pageKey{id: cdpSession}
}

// RecordTarget notes that a client's CDP session cdpSessionID of the browserd session
// sessionID is attached to the target targetID (the gateway saw the browser say so),
// so that the commands on it share a pageId with the target's events. It never blocks;
// on a full queue it is forgotten, and the session's commands get a pageId of their own.
func (a *Service) RecordTarget(sessionID, cdpSessionID, targetID string) {
	if cdpSessionID == "" || targetID == "" {
		return
	}
	w := a.logs
	w.mu.Lock()
	if len(w.q) >= maxQueued {
		w.mu.Unlock()
		return
	}
	w.q = append(w.q, logItem{kind: itemTarget, ev: bb.BrowserEvent{SessionID: sessionID, CDPSessionID: cdpSessionID, TargetID: targetID}})
	w.poke(len(w.q))
}

// enqueueEvent queues a browser event; the queue keeps room for commands.
func (w *logWriter) enqueueEvent(ev bb.BrowserEvent) { w.enqueueCounted(ev, 1) }

// enqueueCounted queues ev, which stands for events browser events: 1 for an event, the
// count a rate-drop marker carries. When the queue has no room for it, those are counted
// with the queue's own drops, so that no drop goes uncounted (a marker lost on a full
// queue lost its whole count: TestBrowserEventsFlood saw 1 480 of 20 000 unaccounted).
func (w *logWriter) enqueueCounted(ev bb.BrowserEvent, events int) {
	n := int64(len(ev.Params) + len(ev.Method) + len(ev.CDPSessionID) + 64)
	w.mu.Lock()
	if w.queued+n > w.queueLimit || len(w.q) >= maxQueued || w.evQueued+n > w.queueLimit/2 || w.evCount >= maxQueued/2 {
		w.evDropped[ev.SessionID] += events
		w.mu.Unlock()
		return
	}
	w.q = append(w.q, logItem{kind: itemEvent, ev: ev})
	w.queued += n
	w.evQueued += n
	w.evCount++
	w.poke(len(w.q))
}

// addTarget notes the target of a client's CDP session.
func (w *logWriter) addTarget(ev *bb.BrowserEvent) {
	st := w.state(ev.SessionID)
	if st.targets == nil {
		st.targets = map[string]string{}
	}
	if len(st.targets) >= maxTargets {
		return
	}
	st.targets[ev.CDPSessionID] = ev.TargetID
	// A command may have crossed the gateway before the attach did (the gateway tells
	// after relaying): its session got a number of its own, which the target takes
	// when it has none yet.
	tk := pageKey{target: true, id: ev.TargetID}
	if n, ok := st.pages[pageKey{id: ev.CDPSessionID}]; ok {
		if _, has := st.pages[tk]; !has {
			st.pages[tk] = n
		}
	}
}

// addEvent decodes a browser event into a SessionLog and appends it, unless the
// session's limits are spent.
func (w *logWriter) addEvent(batch []bb.SessionLog, ev *bb.BrowserEvent) []bb.SessionLog {
	st := w.state(ev.SessionID)
	if st.limited || st.evLimited {
		return batch
	}
	if strings.HasPrefix(ev.Method, "browserd.") { // the run's own marker (eventGate)
		return append(batch, marker(ev.SessionID, ev.Method, ev.At, string(ev.Params)))
	}
	m, ids := decodeEvent(ev, w.payload)
	size := int64(len(m.Raw))
	if st.evBytes+size > w.perSession*eventShareNum/eventShareDen {
		st.evLimited = true
		return append(batch, marker(ev.SessionID, "browserd.logLimitReached", ev.At, fmt.Sprintf(
			`{"limitBytes":%d,"events":true,"reason":"the browser events reached their share of the session's log limit; later events are not logged"}`,
			w.perSession*eventShareNum/eventShareDen)))
	}
	if st.bytes+size > w.perSession {
		return w.limit(batch, st, ev.SessionID, ev.At)
	}
	st.bytes += size
	st.evBytes += size
	page := 0
	if ev.TargetID != "" {
		page = st.page(pageKey{target: true, id: ev.TargetID})
	}
	return append(batch, bb.SessionLog{SessionID: ev.SessionID, Method: ev.Method, PageID: page, CDPSessionID: ev.CDPSessionID,
		FrameID: ids.FrameID, LoaderID: ids.LoaderID, Request: m})
}

// decodeEvent makes the request of an event's log entry: its params as the body, and
// the event message as JSON as its raw text, cut to limit bytes with the marker (then
// the body is TruncatedBody) as a command's are.
func decodeEvent(ev *bb.BrowserEvent, limit int) (*bb.LogMessage, frameIDs) {
	m := &bb.LogMessage{Timestamp: ev.At}
	head := appendJSONString(append(make([]byte, 0, 64), `{"method":`...), ev.Method)
	head = append(head, `,"params":`...)
	var tail []byte
	if ev.CDPSessionID != "" {
		tail = appendJSONString([]byte(`,"sessionId":`), ev.CDPSessionID)
	}
	tail = append(tail, '}')
	size := len(head) + ev.Size + len(tail)
	if size > limit || len(ev.Params) < ev.Size {
		b := append(head, ev.Params[:min(len(ev.Params), max(limit-len(head), 0))]...)
		m.Raw = cutUTF8(b[:min(len(b), limit)]) + bb.TruncationMarker
		m.Body = truncatedBody(size)
		return m, frameIDs{}
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(head)
	sb.Write(ev.Params)
	sb.Write(tail)
	m.Raw = sb.String()
	m.Body = json.RawMessage(`{}`)
	if i := skipSpace(ev.Params, 0); i < len(ev.Params) && ev.Params[i] == '{' && json.Valid(ev.Params) {
		m.Body = ev.Params
	}
	return m, eventFrameIDs(ev.Method, m.Body)
}

// eventFrameIDs returns the frame and loader of an event, from its params (a valid JSON
// object): frameId and loaderId, as in the Network events, or for Page.frameNavigated
// those of its frame (id and loaderId).
func eventFrameIDs(method string, body []byte) frameIDs {
	if method != "Page.frameNavigated" {
		return bodyFrameIDs(body)
	}
	var ids frameIDs
	eachMember(body, func(key, val []byte) {
		if !keyIs(key, "frame") {
			return
		}
		ids = frameIDs{}
		eachMember(val, func(key, val []byte) {
			str := "" // as decoding into a map: the last member counts, a string or not
			if len(val) > 0 && val[0] == '"' {
				str = jsonString(val)
			}
			switch {
			case keyIs(key, "id"):
				ids.FrameID = str
			case keyIs(key, "loaderId"):
				ids.LoaderID = str
			}
		})
	})
	return ids
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// eventGate bounds the events one session logs (eventRate, eventBurst) and counts
// those it drops, for a marker entry.
type eventGate struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

// admit reports whether an event at now may be logged, and how many were dropped
// before it (to be marked first).
func (g *eventGate) admit(now time.Time) (ok bool, dropped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last.IsZero() {
		g.tokens = eventBurst
	} else if d := now.Sub(g.last); d > 0 {
		g.tokens = min(eventBurst, g.tokens+d.Seconds()*eventRate)
	}
	g.last = now
	if g.tokens < 1 {
		g.dropped++
		return false, 0
	}
	g.tokens--
	dropped, g.dropped = g.dropped, 0
	return true, dropped
}

// takeDropped returns the events dropped since the last admitted one.
func (g *eventGate) takeDropped() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.dropped
	g.dropped = 0
	return n
}

// logEvent is the run's bb.AgentOptions.Log: it queues an event for the logs, within
// the session's rate.
func (r *run) logEvent(ev bb.BrowserEvent) {
	ok, dropped := r.gate.admit(ev.At)
	if !ok {
		return
	}
	if dropped > 0 {
		r.markRateDrops(dropped, ev.At)
	}
	r.a.logs.enqueueEvent(ev)
}

// markRateDrops queues the marker of n events dropped over the session's rate.
func (r *run) markRateDrops(n int, at time.Time) {
	body := fmt.Sprintf(`{"dropped":%d,"events":true,"reason":"the browser sent more than %d events a second"}`, n, eventRate)
	r.a.logs.enqueueCounted(bb.BrowserEvent{SessionID: r.id, Method: "browserd.logsDropped", Params: []byte(body), Size: len(body), At: at}, n)
}
