package webdriver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// driver is the chromedriver of one browserd session, shared by its WebDriver sessions.
type driver struct {
	sessionID string
	ended     <-chan struct{} // the browserd session's end
	endReason func() (bb.SessionStatus, string)

	ready chan struct{} // closed when the start finished; then proc or err is set
	proc  *process
	err   error

	users int           // WebDriver sessions and creates using it; guarded by Handler.mu
	dead  bool          // its sessions were ended; no new one may join; guarded by Handler.mu
	stop  chan struct{} // closed when users drops to zero
	gone  chan struct{} // closed once the process is dead and its sessions are ended
}

// why a driver stopped.
type stopCause int

const (
	causeUnused stopCause = iota
	causeSessionEnded
	causeCrashed
	causeShutdown
)

// driverFor returns the running chromedriver of a's browserd session, starting it when
// there is none, and counts the caller as a user (undo with releaseUser).
func (h *Handler) driverFor(ctx context.Context, a attached) (*driver, error) {
	h.mu.Lock()
	if d := h.drivers[a.sessionID]; d != nil {
		d.users++
		h.mu.Unlock()
		select {
		case <-d.ready:
		case <-ctx.Done():
			h.releaseUser(d)
			return nil, ctx.Err()
		}
		if d.err != nil {
			return nil, d.err
		}
		return d, nil
	}
	d := &driver{
		sessionID: a.sessionID,
		ended:     a.att.Ended(),
		endReason: a.att.EndReason,
		ready:     make(chan struct{}),
		users:     1,
		stop:      make(chan struct{}),
		gone:      make(chan struct{}),
	}
	h.drivers[a.sessionID] = d
	h.mu.Unlock()

	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	var proc *process
	var err error
	for try := 1; ; try++ {
		proc, err = startProcess(sctx, h.cfg.Chromedriver, h.log.With("session_id", a.sessionID), h.cfg.Ports)
		// chromedriver --port=0 picks a free port and then binds it: another process may
		// take it in between ("bind() failed: Address already in use"). Another try picks
		// another port.
		if err == nil || try == 3 || !strings.Contains(err.Error(), "Address already in use") || sctx.Err() != nil {
			break
		}
		h.log.Warn("chromedriver lost its port to another process; starting it again", "session_id", a.sessionID, "try", try)
	}
	cancel()
	h.mu.Lock()
	if err == nil && h.closed {
		proc.stop()
		err = fmt.Errorf("the server is shutting down")
	}
	if err != nil {
		d.err = err
		if h.drivers[a.sessionID] == d {
			delete(h.drivers, a.sessionID)
		}
		close(d.ready)
		close(d.gone)
		h.mu.Unlock()
		return nil, err
	}
	d.proc = proc
	close(d.ready)
	h.wg.Add(1) // not closed: Shutdown's Wait cannot have returned
	h.mu.Unlock()
	go h.watch(d) // exits when the session ends, chromedriver exits, is unused, or at Shutdown
	h.log.Info("chromedriver started", "session_id", a.sessionID, "pid", proc.pid, "addr", proc.addr,
		"took", time.Since(start))
	return d, nil
}

// releaseUser undoes driverFor's count; a driver nobody uses any more is stopped.
func (h *Handler) releaseUser(d *driver) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseUserLocked(d)
}

func (h *Handler) releaseUserLocked(d *driver) {
	d.users--
	if d.users == 0 && h.drivers[d.sessionID] == d && d.proc != nil {
		delete(h.drivers, d.sessionID)
		close(d.stop)
	}
}

// watch stops a driver's process when its browserd session ends, when nobody uses it,
// or at Shutdown, and notices when it crashes. Then it ends the WebDriver sessions on it.
func (h *Handler) watch(d *driver) {
	defer h.wg.Done()
	defer close(d.gone)
	var cause stopCause
	select {
	case <-d.ended:
		cause = causeSessionEnded
	case <-d.proc.exited:
		cause = causeCrashed
	case <-d.stop:
		cause = causeUnused
	case <-h.done:
		cause = causeShutdown
	}
	d.proc.stop()
	h.client.CloseIdleConnections() // the ones to this chromedriver are dead

	var code, msg string
	status := http.StatusNotFound
	switch cause {
	case causeSessionEnded:
		st, reason := d.endReason()
		code, msg = errInvalidSessionID, fmt.Sprintf("the browserd session %s has ended (%s: %s)", d.sessionID, st, reason)
	case causeCrashed:
		status = http.StatusInternalServerError
		code, msg = errUnknownError, fmt.Sprintf("chromedriver exited unexpectedly (%s); the WebDriver session is lost. "+
			"Its last output: %s", d.proc.exitStatus(), d.proc.lastOutput())
		h.log.Warn("chromedriver exited unexpectedly", "session_id", d.sessionID, "pid", d.proc.pid,
			"exit", d.proc.exitStatus(), "output", d.proc.lastOutput())
	case causeShutdown:
		status = http.StatusServiceUnavailable
		code, msg = errUnknownError, "the server is shutting down"
	}
	h.mu.Lock()
	d.dead = true
	if h.drivers[d.sessionID] == d {
		delete(h.drivers, d.sessionID)
	}
	var atts []attachment
	for _, ws := range h.wds {
		if ws.drv == d && ws.ended == nil {
			atts = append(atts, h.endLocked(ws, newError(status, code, msg)))
			h.releaseUserLocked(d)
		}
	}
	h.mu.Unlock()
	for _, a := range atts {
		a.Detach() // a crash drops the client's "connection"; the session follows §5.3
	}
	if cause != causeCrashed {
		h.log.Info("chromedriver stopped", "session_id", d.sessionID, "pid", d.proc.pid, "sessions_ended", len(atts))
	}
}
