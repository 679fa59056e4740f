package browserd

import (
	"context"
	"strings"
	"sync"
	"time"
)

// liveSession is the Manager's in-memory state of a running session. Its fields are
// guarded by Manager.mu.
type liveSession struct {
	id, projectID string
	keepAlive     bool
	browser       Browser
	runs          []PartRun // by index of Manager.parts; nil where a part has no run; set once

	usage    SessionUsage // the last measurement (usage.go)
	hasUsage bool

	clients        int
	everConnected  bool
	closeRequested bool // a client sent Browser.close; the exit that follows is normal
	ending         bool
	endStatus      SessionStatus
	endReason      string
	ended          chan struct{} // closed when the session ends
	recorded       chan struct{} // closed once finish tried to record the end (endrecord.go)

	expiry, connectDeadline, grace *time.Timer
}

// track registers a started browser as a live session and watches its process.
func (m *Manager) track(s *Session, b Browser, runs []PartRun) *liveSession {
	ls := &liveSession{id: s.ID, projectID: s.ProjectID, keepAlive: s.KeepAlive, browser: b, runs: runs,
		ended: make(chan struct{}), recorded: make(chan struct{})}
	m.mu.Lock()
	m.live[s.ID] = ls
	m.mu.Unlock()
	m.wg.Go(func() {
		select {
		case <-b.Exited():
			m.mu.Lock()
			normal := ls.closeRequested
			m.mu.Unlock()
			if normal {
				m.finish(ls, StatusCompleted, "browser closed by a client")
			} else {
				m.finish(ls, StatusError, "browser process exited unexpectedly")
			}
		case <-ls.ended:
		}
	})
	return ls
}

// arm starts the session's timers: its lifetime and, without keepAlive, the deadline
// for a first connection.
func (m *Manager) arm(ls *liveSession, expiresAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ls.ending {
		return
	}
	ls.expiry = time.AfterFunc(time.Until(expiresAt), func() {
		m.finishAsync(ls, StatusTimedOut, "timeout reached")
	})
	if !ls.keepAlive && m.cfg.ConnectTimeout > 0 && !ls.everConnected {
		ls.connectDeadline = time.AfterFunc(m.cfg.ConnectTimeout, func() {
			m.finishAsync(ls, StatusTimedOut, "no client connected before the connect deadline")
		})
	}
}

// finishAsync ends a session from a timer callback, in a goroutine the Manager waits for.
func (m *Manager) finishAsync(ls *liveSession, status SessionStatus, reason string) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return // Close ends it
	}
	m.wg.Go(func() { m.finish(ls, status, reason) })
}

// finish ends a live session: it records the end in the store (so the API tells the
// truth at once), tells attached clients, then stops the browser in the background and
// frees the slot once the process group is gone. It returns the ended session, or nil if
// the session was already ending. An end the store does not take is retried in the
// background (endrecord.go) and its error returned; the browser stops all the same.
func (m *Manager) finish(ls *liveSession, status SessionStatus, reason string) (*Session, error) {
	m.mu.Lock()
	if ls.ending {
		m.mu.Unlock()
		return nil, nil
	}
	ls.ending = true
	ls.endStatus, ls.endReason = status, reason
	for _, t := range []*time.Timer{ls.expiry, ls.connectDeadline, ls.grace} {
		if t != nil {
			t.Stop()
		}
	}
	close(ls.ended)
	m.mu.Unlock()

	// The parts' final values (proxyBytes) and the last usage sample go with the end;
	// measuring afresh (tens of ms of /proc reading) happens after the answer, in the
	// background, before the stop.
	alsos := []func(*Session){m.lastUsage(ls)} // usage.go
	for i := len(ls.runs) - 1; i >= 0; i-- {
		if r := ls.runs[i]; r != nil {
			alsos = append(alsos, r.Ending(status))
		}
	}
	ctx, cancel := m.storeTimeout()
	defer cancel()
	end := &pendingEnd{status: status, reason: reason, endedAt: time.Now(), also: joinAlso(alsos)}
	s, err := m.recordEnd(ctx, ls.id, end)
	if err != nil {
		end.err = err
		m.pendEnd(ls.id, end) // endrecord.go: retried until stored
	}
	close(ls.recorded)
	m.log.Info("session ended", "session_id", ls.id, "status", string(status), "reason", reason)
	recorded := err == nil

	m.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 30*time.Second)
		defer cancel()
		if recorded {
			m.saveUsage(ctx, ls) // usage.go: final CPU and memory, while the browser still runs
		} else {
			// The store refused the end (locked by another process, disk full): one more
			// write would wait out its busy timeout, queued behind the others, before the
			// browser stops, and hold up every create behind it. The pending end carries
			// the last sample instead.
			m.forgetUsage(ls)
		}
		if err := m.closeSessionBrowser(ctx, ls, status); err != nil {
			m.log.Error("stop browser", "session_id", ls.id, "err", err)
		}
		m.mu.Lock()
		delete(m.live, ls.id)
		m.reserved--
		m.mu.Unlock()
	})
	return s, err
}

// closeSessionBrowser stops a session's browser, lets the parts take what they keep of
// its files (a context written back, downloads), closes it (which removes its files),
// and ends the parts' runs. Everything that reads the browser's directory runs once
// every process of the browser is gone: as the directory belongs to the browser's uid,
// nothing in it may change while the server reads it (docs/SECURITY.md).
func (m *Manager) closeSessionBrowser(ctx context.Context, ls *liveSession, status SessionStatus) error {
	if pb, ok := ls.browser.(ProfileBrowser); ok {
		if err := pb.Stop(ctx); err != nil {
			m.log.Warn("stop browser", "session_id", ls.id, "err", err)
		}
	}
	// m.ctx: a shutdown that runs out of time abandons what the parts still do (a
	// context write-back then leaves the earlier snapshot in place).
	for i := len(ls.runs) - 1; i >= 0; i-- {
		if r := ls.runs[i]; r != nil {
			r.Stopped(m.ctx, ls.browser, status)
		}
	}
	err := ls.browser.Close(ctx)
	endParts(ctx, ls.runs)
	return err
}

// joinAlso is one function that calls every non-nil f in order; nil for none.
func joinAlso(fs []func(*Session)) func(*Session) {
	var set []func(*Session)
	for _, f := range fs {
		if f != nil {
			set = append(set, f)
		}
	}
	if len(set) == 0 {
		return nil
	}
	return func(s *Session) {
		for _, f := range set {
			f(s)
		}
	}
}

// ConnectCredentials identify a session on a CDP connection: a signing key, or the
// legacy API key and session id pair (spec §4.1).
type ConnectCredentials struct {
	SigningKey string
	APIKey     string
	SessionID  string
}

// ClaimedSession returns the session the credentials name, without checking them: the
// id a signing key starts with, else SessionID; ok=false when that is no valid id. A
// cluster node forwards by it to the session's owner, which checks the credentials.
func (c ConnectCredentials) ClaimedSession() (id string, ok bool) {
	id = c.SessionID
	if c.SigningKey != "" {
		id, _, _ = strings.Cut(c.SigningKey, ".")
	}
	if !ValidID(id) {
		return "", false
	}
	return id, true
}

// Attachment is one client connection to a live session, held by the CDP gateway.
type Attachment struct {
	SessionID string
	ProjectID string
	// BrowserURL is the browser-level DevTools websocket to relay to.
	BrowserURL string

	m    *Manager
	ls   *liveSession
	once sync.Once
}

// Attach authenticates a connection and registers it as a client of the session.
// Errors: CodeUnauthorized (bad credentials), CodeNotFound, CodeGone (ended).
func (m *Manager) Attach(ctx context.Context, c ConnectCredentials) (*Attachment, error) {
	var id, projectID string
	switch {
	case c.SigningKey != "":
		sid, ok := m.cfg.Signer.SessionOfSigningKey(c.SigningKey)
		if !ok {
			return nil, Errorf(CodeUnauthorized, "invalid signingKey")
		}
		id = sid
	case c.APIKey != "" && c.SessionID != "":
		k, err := m.Authenticate(ctx, c.APIKey)
		if err != nil {
			return nil, err
		}
		id, projectID = c.SessionID, k.ProjectID
	default:
		return nil, Errorf(CodeUnauthorized, "missing signingKey (or apiKey and sessionId)")
	}
	m.mu.Lock()
	ls := m.live[id]
	if ls != nil && !ls.ending && (projectID == "" || ls.projectID == projectID) {
		ls.clients++
		ls.everConnected = true
		for _, t := range []*time.Timer{ls.connectDeadline, ls.grace} {
			if t != nil {
				t.Stop()
			}
		}
		m.mu.Unlock()
		return &Attachment{SessionID: id, ProjectID: ls.projectID, BrowserURL: ls.browser.DevToolsURL(), m: m, ls: ls}, nil
	}
	m.mu.Unlock()
	// Not live here: say whether it ended. projectID is "" for a signing key, whose valid
	// MAC already proves the caller was given this session.
	s, err := m.store.Session(ctx, id)
	switch {
	case CodeOf(err) == CodeNotFound || (err == nil && projectID != "" && s.ProjectID != projectID):
		return nil, Errorf(CodeNotFound, "Session not found")
	case err != nil:
		return nil, err
	case s.Status.Terminal():
		return nil, Errorf(CodeGone, "session %s has ended (%s)", id, s.Status)
	}
	return nil, Errorf(CodeUnavailable, "session %s is not running on this node", id)
}

// Ended is closed when the session ends; the gateway then closes the connection.
func (a *Attachment) Ended() <-chan struct{} { return a.ls.ended }

// EndReason returns the status and reason of an ended session.
func (a *Attachment) EndReason() (SessionStatus, string) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.ls.endStatus, a.ls.endReason
}

// BrowserClosing records that the client sent Browser.close: the browser exit that
// follows ends the session as COMPLETED, keepAlive or not (docs/COMPATIBILITY.md).
func (a *Attachment) BrowserClosing() {
	a.m.mu.Lock()
	a.ls.closeRequested = true
	a.m.mu.Unlock()
}

// Detach unregisters the connection. When the last client of a session without
// keepAlive leaves, the session ends after the disconnect grace period.
func (a *Attachment) Detach() {
	a.once.Do(func() {
		m, ls := a.m, a.ls
		m.mu.Lock()
		defer m.mu.Unlock()
		ls.clients--
		if ls.clients > 0 || ls.keepAlive || ls.ending || m.closed {
			return
		}
		if ls.grace != nil {
			ls.grace.Stop()
		}
		ls.grace = time.AfterFunc(m.cfg.DisconnectGrace, func() {
			m.mu.Lock()
			idle := ls.clients == 0
			m.mu.Unlock()
			if idle {
				m.finishAsync(ls, StatusCompleted, "the last client disconnected")
			}
		})
	})
}
