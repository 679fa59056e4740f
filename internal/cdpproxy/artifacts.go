package cdpproxy

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// artifacts is what the gateway needs of session artifacts; *artifacts.Service (internal/artifacts) satisfies it.
type artifacts interface {
	// Live says where a live session's files are and whether it keeps CDP logs.
	Live(sessionID string) (bb.LiveSession, bool)
	// RecordCDP queues a command and its response for the logs; it must not block.
	RecordCDP(ex bb.CDPExchange)
	// RecordTarget tells the logs the target a client's CDP session is attached to, so
	// that its commands share a pageId with the target's events; it must not block.
	RecordTarget(sessionID, cdpSessionID, targetID string)
}

// maxPending bounds the commands a connection waits for answers to, for the logs;
// beyond it commands are logged without waiting for their responses.
const maxPending = 4096

// pendingCommand is a logged command waiting for its response.
type pendingCommand struct {
	method, cdpSession string
	raw                []byte // cut to the payload limit
	size               int
	at                 time.Time
}

// cdpLog pairs one connection's commands with their responses for the session logs.
type cdpLog struct {
	sink      artifacts
	sessionID string
	limit     int

	mu      sync.Mutex
	pending map[int64]pendingCommand
}

// command notes a client command of size bytes, which msg starts. It copies at most
// limit bytes of it. The method is the decoded one, as the browser reads it.
func (l *cdpLog) command(msg []byte, size int, cmd command) {
	p := pendingCommand{
		method:     string(cmd.method),
		cdpSession: string(cmd.sessionID),
		raw:        bytes.Clone(msg[:min(len(msg), l.limit)]),
		size:       size,
		at:         time.Now(),
	}
	if !cmd.hasID {
		l.emit(p, nil, 0, time.Time{})
		return
	}
	l.mu.Lock()
	if len(l.pending) >= maxPending {
		l.mu.Unlock()
		l.emit(p, nil, 0, time.Time{})
		return
	}
	l.pending[cmd.id] = p
	l.mu.Unlock()
}

// browser sees each browser message (cut to the limit); size is its whole size.
func (l *cdpLog) browser(msg []byte, size int64) {
	id, ok := responseID(msg)
	if !ok {
		if sid, tid, ok := attachedTarget(msg); ok {
			l.sink.RecordTarget(l.sessionID, sid, tid)
		}
		return
	}
	l.mu.Lock()
	p, ok := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if ok {
		l.emit(p, bytes.Clone(msg), int(size), time.Now())
	}
}

// end logs the commands that never got a response (Browser.close, or the connection ended).
func (l *cdpLog) end() {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, p := range pending {
		l.emit(p, nil, 0, time.Time{})
	}
}

// attachedPrefix starts the message of a Target.attachedToTarget event: Chromium writes
// an event's method first.
var attachedPrefix = []byte(`{"method":"Target.attachedToTarget"`)

// attachedTarget returns the CDP session and the target of a Target.attachedToTarget
// event, the way a client learns of the flat sessions it then sends commands on (also
// for Target.attachToTarget, which announces the session so too). Other messages give
// ok false at the cost of a prefix check; the attach events are few and small.
func attachedTarget(msg []byte) (sessionID, targetID string, ok bool) {
	if !bytes.HasPrefix(msg, attachedPrefix) {
		return "", "", false
	}
	var ev struct {
		Params struct {
			SessionID  string `json:"sessionId"`
			TargetInfo struct {
				TargetID string `json:"targetId"`
			} `json:"targetInfo"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &ev) != nil || ev.Params.SessionID == "" || ev.Params.TargetInfo.TargetID == "" {
		return "", "", false
	}
	return ev.Params.SessionID, ev.Params.TargetInfo.TargetID, true
}

func (l *cdpLog) emit(p pendingCommand, res []byte, size int, at time.Time) {
	l.sink.RecordCDP(bb.CDPExchange{
		SessionID: l.sessionID, Method: p.method, CDPSessionID: p.cdpSession,
		Request: p.raw, RequestSize: p.size, RequestAt: p.at,
		Response: res, ResponseSize: size, ResponseAt: at,
	})
}

// hooksFor returns the relay hooks of a connection: Browser.close detection and path
// confinement always (with the directories of a session Config.Artifacts knows);
// logging when logs is set and the session keeps logs, which also limits what the
// browser observer copies to the payload limit.
func (g *Gateway) hooksFor(c *conn, cfg *relayConfig, logs bool) hooks {
	h := hooks{client: c.inspectClient, clientStreamed: c.inspectStreamed}
	if g.cfg.Artifacts == nil {
		return h
	}
	live, ok := g.cfg.Artifacts.Live(c.sessionID)
	if !ok {
		return h
	}
	c.live = live
	if logs && live.Logs && live.LogPayloadLimit > 0 {
		c.log = &cdpLog{sink: g.cfg.Artifacts, sessionID: c.sessionID, limit: live.LogPayloadLimit, pending: map[int64]pendingCommand{}}
		h.browser = func(op opcode, msg []byte, size int64) {
			if op == opText {
				c.log.browser(msg, size)
			}
		}
		cfg.observeMax = int64(live.LogPayloadLimit)
		cfg.headMax = live.LogPayloadLimit
	}
	return h
}
