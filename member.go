package browserd

import (
	"context"
	"errors"
	"slices"
	"time"
)

// The Manager's side of cluster membership (cluster.go, internal/cluster): the load a
// node reports in its heartbeat, draining, fencing, and ending a lost peer's sessions in
// the store. A node that is not in a cluster never calls these, and behaves as before.

// ErrDraining is the cause of a create refused because the node is draining.
var ErrDraining = errors.New("browserd: node draining")

// ErrFenced is the cause of a create refused because the node lost its membership.
var ErrFenced = errors.New("browserd: node fenced")

// Killer is implemented by browsers that can be killed at once, without the graceful
// stop Close begins with (internal/chrome's Browser): fencing must have every browser
// of the node gone before its peers count the node lost, and a graceful stop may take
// seconds.
type Killer interface {
	// Kill sends SIGKILL to the browser's processes and waits until they are gone.
	// Close still removes the browser's files afterwards.
	Kill() error
}

// nodeAdmission is whether the Manager takes new sessions; guarded by Manager.mu.
type nodeAdmission struct {
	draining bool
	fenced   string // why, while fenced; "" otherwise
}

// refusal is the error reserve returns while draining or fenced, or nil; m.mu is held.
func (m *Manager) refusal() error {
	switch {
	case m.admission.fenced != "":
		return &Error{Code: CodeUnavailable, Retry: true, Err: ErrFenced,
			Message: "This browserd node has lost its cluster membership and takes no sessions; retry on another node."}
	case m.admission.draining:
		return &Error{Code: CodeUnavailable, Retry: true, Err: ErrDraining,
			Message: "This browserd node is draining (shutting down) and takes no new sessions; retry on another node."}
	}
	return nil
}

// Accepting returns nil while the Manager takes new sessions, else the error a create
// gets (draining, fenced, or closed): /readyz reports it.
func (m *Manager) Accepting() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return &Error{Code: CodeUnavailable, Message: "the server is shutting down", Err: ErrManagerClosed}
	}
	return m.refusal()
}

// Load returns the node's live sessions, creates in progress included (what counts
// against MaxSessions), and the launch keys it has a ready warm browser for ("" is the
// default shelf), sorted: what a heartbeat reports.
func (m *Manager) Load() (live int, warm []string) {
	m.mu.Lock()
	live = m.reserved
	m.mu.Unlock()
	return live, m.pool.warmKeys()
}

// warmKeys returns the keys of the shelves with a ready browser, the plain one as "".
func (p *pool) warmKeys() []string {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []string
	for key, sh := range p.shelves {
		if len(sh.ready) == 0 {
			continue
		}
		if key == p.plainKey {
			key = ""
		}
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// Drain makes the Manager refuse new sessions (503, ErrDraining) while its live ones
// run on; Close ends what is left. It cannot be undone: a draining node leaves.
func (m *Manager) Drain() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.admission.draining {
		m.admission.draining = true
		m.log.Info("node draining: new sessions are refused", "live_sessions", m.reserved)
	}
}

// Fence kills the browser of every live session at once, before anything else, and
// ends those sessions ERROR with reason; creates are refused (503, ErrFenced) until
// Unfence. It is for a node that lost its cluster membership: its peers will end its
// sessions in the store, so none of its browsers may still run by then. The ends are
// written to the store in the background, retried until it takes them (endrecord.go);
// a session a peer ended first keeps the peer's end. It returns how many sessions it
// ended, and returns once their browsers are gone.
func (m *Manager) Fence(reason string) int {
	m.mu.Lock()
	if m.admission.fenced == "" {
		m.admission.fenced = reason
	}
	var fenced, ending []*liveSession
	for _, ls := range m.live {
		if ls.ending {
			ending = append(ending, ls) // its end may wait for the store before it stops the browser
		} else {
			fenced = append(fenced, ls)
		}
	}
	m.mu.Unlock()
	done := make(chan struct{}, len(fenced)+len(ending))
	for _, ls := range fenced {
		m.wg.Go(func() { m.fenceSession(ls, reason); done <- struct{}{} })
	}
	for _, ls := range ending {
		m.wg.Go(func() { m.kill(ls); done <- struct{}{} })
	}
	for range len(fenced) + len(ending) {
		<-done
	}
	m.log.Error("node fenced: every browser killed", "reason", reason, "sessions_ended", len(fenced))
	return len(fenced)
}

// fenceSession ends one live session as finish does, but kills its browser first and
// leaves the store write to the retries: the store is likely unreachable, and each
// write would wait out StoreTimeout before the kill.
func (m *Manager) fenceSession(ls *liveSession, reason string) {
	m.mu.Lock()
	if ls.ending {
		m.mu.Unlock()
		return
	}
	ls.ending = true
	ls.endStatus, ls.endReason = StatusError, reason
	for _, t := range []*time.Timer{ls.expiry, ls.connectDeadline, ls.grace} {
		if t != nil {
			t.Stop()
		}
	}
	close(ls.ended)
	m.mu.Unlock()
	m.kill(ls)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 30*time.Second)
	defer cancel()
	if err := m.closeSessionBrowser(ctx, ls, StatusError); err != nil { // files, parts; the processes are gone
		m.log.Error("fence: stop browser", "session_id", ls.id, "err", err)
	}
	m.forgetUsage(ls)
	m.queueEnd(ls.id, &pendingEnd{status: StatusError, reason: reason, endedAt: time.Now(), err: ErrFenced})
	close(ls.recorded)
	m.mu.Lock()
	delete(m.live, ls.id)
	m.reserved--
	m.mu.Unlock()
	m.log.Warn("session ended", "session_id", ls.id, "status", string(StatusError), "reason", reason)
}

// kill kills a session's browser at once when it can (Killer); Close stops the rest.
func (m *Manager) kill(ls *liveSession) {
	if k, ok := ls.browser.(Killer); ok {
		if err := k.Kill(); err != nil {
			m.log.Error("fence: kill browser", "session_id", ls.id, "err", err)
		}
	}
}

// Unfence takes sessions again after Fence, once the node is a member again.
func (m *Manager) Unfence() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admission.fenced != "" {
		m.admission.fenced = ""
		m.log.Info("node unfenced: taking sessions again")
	}
}

// fencedNow reports whether the Manager is fenced; a create that launched while Fence
// ran checks it after track.
func (m *Manager) fencedNow() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admission.fenced, m.admission.fenced != ""
}

// NodeSessions returns the sessions the store has as live on node nodeID, of any
// project: a survivor ends those of a lost peer.
func (m *Manager) NodeSessions(ctx context.Context, nodeID string) ([]*Session, error) {
	return m.store.Sessions(ctx, SessionFilter{NodeID: nodeID, LiveOnly: true})
}

// EndStoredSession ends a session in the store only, with status and reason, and
// returns it as stored: for a session whose browser ran on a node that is gone. A
// session already ended keeps its end.
func (m *Manager) EndStoredSession(ctx context.Context, id string, status SessionStatus, reason string) (*Session, error) {
	return m.endInStore(ctx, id, status, reason)
}
