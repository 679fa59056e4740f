package browserd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// No session is ever stuck (security-review F7). A session's end is recorded in the
// store when it ends; when that write fails (the store busy past StoreTimeout, the disk
// full) the browser is stopped all the same, and the end waits in the Manager's pending
// set, retried in the background with backoff until the store takes it. A periodic sweep
// also ends the sessions the store has as live on this node that no browser backs, and
// retries the pending ends.

// Backoff of the retries of an end record.
const (
	endRetryFirst = time.Second
	endRetryMax   = time.Minute
)

// pendingEnd is a session end the store has not taken yet.
type pendingEnd struct {
	status  SessionStatus
	reason  string
	endedAt time.Time      // when the session ended, which the record keeps
	also    func(*Session) // sets the parts' final values and the last usage sample; may be nil
	err     error          // why the last write failed
}

// endRecords is the Manager's state of session ends; guarded by Manager.mu.
type endRecords struct {
	pending  map[string]*pendingEnd
	starting map[string]bool // creates between their store insert and track (or failure)
}

// ErrEndNotRecorded is the cause of a release answered 503: the session's browser is
// stopped, but its end is not in the store yet (it is being retried).
var ErrEndNotRecorded = errors.New("browserd: session end not recorded")

// endNotRecorded is the API error for a session whose end the store has not taken.
func endNotRecorded(id string, cause error) *Error {
	return &Error{Code: CodeUnavailable, Retry: true, Err: errors.Join(ErrEndNotRecorded, cause), Message: fmt.Sprintf(
		"Session %s has ended, but its end could not be recorded yet; the server keeps trying. Retry the request.", id)}
}

// recordEnd writes an end to the store with its own end time; a session already ended
// in the store is left as it is.
func (m *Manager) recordEnd(ctx context.Context, id string, p *pendingEnd) (*Session, error) {
	s, err := m.store.UpdateSession(ctx, id, func(s *Session) error {
		if s.Status.Terminal() {
			return errSessionEnded
		}
		at := p.endedAt.UTC().Truncate(time.Millisecond)
		s.Status, s.EndedAt, s.UpdatedAt, s.EndReason = p.status, at, at, p.reason
		if p.also != nil {
			p.also(s)
		}
		return nil
	})
	if errors.Is(err, errSessionEnded) {
		return m.store.Session(ctx, id)
	}
	if err == nil {
		m.emit(EventSessionEnded, s)
	}
	return s, err
}

// storeTimeout bounds one store write that ends a session.
func (m *Manager) storeTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(m.ctx), m.cfg.StoreTimeout)
}

// pendEnd keeps an end the store refused, and starts retrying it unless a retry of the
// session runs already.
func (m *Manager) pendEnd(id string, p *pendingEnd) {
	m.log.Error("record session end", "session_id", id, "status", string(p.status), "err", p.err)
	m.queueEnd(id, p)
}

// queueEnd is pendEnd without the log line, for an end not tried yet (Fence).
func (m *Manager) queueEnd(id string, p *pendingEnd) {
	m.mu.Lock()
	if m.ends.pending == nil {
		m.ends.pending = make(map[string]*pendingEnd)
	}
	_, retrying := m.ends.pending[id]
	m.ends.pending[id] = p
	m.mu.Unlock()
	if !retrying {
		m.wg.Go(func() { m.retryEnd(id) }) // returns once stored, or when the Manager closes
	}
}

// pendingEndOf returns the pending end of a session, or nil.
func (m *Manager) pendingEndOf(id string) *pendingEnd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ends.pending[id]
}

// PendingEnds returns how many session ends wait to be recorded in the store.
func (m *Manager) PendingEnds() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ends.pending)
}

// retryEnd retries a pending end with backoff until the store takes it. When the
// Manager closes it tries once more and gives up: Reconcile, at the next start, ends
// the sessions still live in the store as ERROR.
func (m *Manager) retryEnd(id string) {
	delay := endRetryFirst
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.closing:
			if _, err := m.tryPendingEnd(id); err != nil {
				m.log.Error("session end not recorded before shutdown; the next start ends it", "session_id", id, "err", err)
			}
			return
		}
		if _, err := m.tryPendingEnd(id); err == nil {
			return
		}
		delay = min(2*delay, endRetryMax)
		t.Reset(delay)
	}
}

// tryPendingEnd writes a pending end once. It returns the session as stored, or
// (nil, nil) when nothing is pending for id.
func (m *Manager) tryPendingEnd(id string) (*Session, error) {
	p := m.pendingEndOf(id)
	if p == nil {
		return nil, nil
	}
	ctx, cancel := m.storeTimeout()
	defer cancel()
	s, err := m.recordEnd(ctx, id, p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil && CodeOf(err) != CodeNotFound {
		p.err = err
		return nil, err
	}
	if m.ends.pending[id] == p {
		delete(m.ends.pending, id)
	}
	m.log.Info("session end recorded", "session_id", id, "status", string(p.status), "late_by", time.Since(p.endedAt))
	return s, nil
}

// startSweep starts the sweep loop, once; Reconcile calls it.
func (m *Manager) startSweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.SweepInterval < 0 || m.sweepStarted || m.closed {
		return
	}
	m.sweepStarted = true
	m.wg.Go(m.sweepLoop) // returns when the Manager closes
}

func (m *Manager) sweepLoop() {
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.sweep()
		case <-m.closing:
			return
		}
	}
}

// sweep ends, as ERROR, the sessions the store has as live on this node that no browser
// backs (not live here, not being created), and retries the pending ends.
func (m *Manager) sweep() {
	ctx, cancel := m.storeTimeout()
	stale, err := m.store.Sessions(ctx, SessionFilter{NodeID: m.cfg.NodeID, LiveOnly: true})
	cancel()
	if err != nil {
		m.log.Error("sweep: list live sessions", "err", err)
	}
	for _, s := range stale {
		m.mu.Lock()
		_, live := m.live[s.ID]
		starting, pending := m.ends.starting[s.ID], m.ends.pending[s.ID] != nil
		m.mu.Unlock()
		if live || starting || pending {
			continue // pending ones are retried below
		}
		now := time.Now()
		m.log.Warn("sweep: session without a browser", "session_id", s.ID, "status", string(s.Status))
		p := &pendingEnd{status: StatusError, reason: "the session's browser was lost (found by the sweep)", endedAt: now}
		ctx, cancel := m.storeTimeout()
		_, err := m.recordEnd(ctx, s.ID, p)
		cancel()
		if err != nil && CodeOf(err) != CodeNotFound {
			p.err = err
			m.pendEnd(s.ID, p)
		}
	}
	m.mu.Lock()
	ids := make([]string, 0, len(m.ends.pending))
	for id := range m.ends.pending {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if _, err := m.tryPendingEnd(id); err != nil {
			m.log.Warn("sweep: session end still not recorded", "session_id", id, "err", err)
		}
	}
}

// startingCreate marks a create between its store insert and its end (track, or
// failure), so that the sweep leaves its session alone; the returned func unmarks it.
func (m *Manager) startingCreate(id string) func() {
	m.mu.Lock()
	if m.ends.starting == nil {
		m.ends.starting = make(map[string]bool)
	}
	m.ends.starting[id] = true
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.ends.starting, id)
		m.mu.Unlock()
	}
}
