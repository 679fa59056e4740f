package browserd

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
	"time"
)

// Observer is told how session creates and browser launches go, for metrics and
// readiness (internal/metrics, internal/server). Its methods are called synchronously on
// the create's goroutine and must return quickly.
type Observer interface {
	// CreateAccepted is called when a create returned a session, d after it began.
	CreateAccepted(projectID string, d time.Duration)
	// CreateRefused is called when a create failed, with why, d after it began.
	CreateRefused(projectID string, reason RefuseReason, d time.Duration)
	// BrowserLaunched is called after every cold launch (for a session or the warm pool)
	// with how long the browser took to get ready; err is nil when it did.
	BrowserLaunched(d time.Duration, err error)
}

// RefuseReason says why a create failed.
type RefuseReason string

// Refuse reasons.
const (
	// RefusedConcurrency: the project is at its concurrency limit (429).
	RefusedConcurrency RefuseReason = "concurrency"
	// RefusedCapacity: this node is at MaxSessions (429).
	RefusedCapacity RefuseReason = "capacity"
	// RefusedInvalid: the request was invalid or named something that does not exist (4xx).
	RefusedInvalid RefuseReason = "invalid"
	// RefusedShutdown: the server is shutting down (503).
	RefusedShutdown RefuseReason = "shutdown"
	// RefusedCanceled: the client went away before the browser was ready.
	RefusedCanceled RefuseReason = "canceled"
	// RefusedError: the browser failed to start, or another server error (5xx).
	RefusedError RefuseReason = "error"
)

// RefuseReasons lists every RefuseReason, for metrics that export zeros.
var RefuseReasons = []RefuseReason{RefusedConcurrency, RefusedCapacity, RefusedInvalid,
	RefusedShutdown, RefusedCanceled, RefusedError}

// ErrLaunchArgs is the cause of a launch whose command line, derived from a create
// request, the kernel refused to exec (EINVAL: a NUL byte; E2BIG: too long). It is the
// request's fault, not the node's: readiness does not count it as a failed launch
// (security-review F6). Request validation keeps it from happening.
var ErrLaunchArgs = errors.New("browserd: the launch arguments were refused")

// execArgsRefused reports whether err is an exec failure caused by its arguments.
func execArgsRefused(err error) bool {
	pe, ok := errors.AsType[*fs.PathError](err)
	return ok && pe.Op == "fork/exec" && (errors.Is(pe.Err, syscall.EINVAL) || errors.Is(pe.Err, syscall.E2BIG))
}

// ErrNodeFull is the cause of a create refused because the node is at MaxSessions.
var ErrNodeFull = errors.New("browserd: node at capacity")

// refuseReason classifies the error of a failed create.
func refuseReason(err error) RefuseReason {
	switch {
	case errors.Is(err, ErrNodeFull), errors.Is(err, ErrLowDisk):
		return RefusedCapacity
	case errors.Is(err, ErrManagerClosed):
		return RefusedShutdown
	}
	if e, ok := errors.AsType[*Error](err); ok {
		switch e.Code {
		case CodeLimit:
			return RefusedConcurrency // the store's project limit; the node's has ErrNodeFull
		case CodeInvalid, CodeNotFound, CodeUnauthorized, CodeForbidden, CodeTooLarge, CodeUnprocessable:
			return RefusedInvalid
		case CodeUnavailable:
			return RefusedShutdown
		}
		return RefusedError // a launch timeout wraps DeadlineExceeded in a CodeInternal *Error
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return RefusedCanceled
	}
	return RefusedError
}

// observeCreate reports a create's outcome to the Observer; CreateSession defers it.
func (m *Manager) observeCreate(projectID string, start time.Time, err *error) {
	o := m.cfg.Observer
	if o == nil {
		return
	}
	if *err == nil {
		o.CreateAccepted(projectID, time.Since(start))
		return
	}
	o.CreateRefused(projectID, refuseReason(*err), time.Since(start))
}

// observeLaunch reports a cold launch to the Observer; startBrowser defers it.
func (m *Manager) observeLaunch(start time.Time, err *error) {
	if m.cfg.Observer != nil {
		m.cfg.Observer.BrowserLaunched(time.Since(start), *err)
	}
}

// Capacity returns how many sessions this node holds (live ones plus creates in
// progress) and how many it may hold; closed is true once Close has begun.
func (m *Manager) Capacity() (used, max int, closed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reserved, m.cfg.MaxSessions, m.closed
}

// SessionCount is how many sessions of a project have a status.
type SessionCount struct {
	ProjectID string
	Status    SessionStatus
	N         int
}
