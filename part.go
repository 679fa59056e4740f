package browserd

import "context"

// A SessionPart is a concern that lives beside every session's browser: the session
// proxy and emulation agent (setup.go), contexts and extensions (internal/profiles), CA
// certificates (internal/certs), and logs, downloads, uploads and recordings
// (internal/artifacts). The Manager calls every
// part at the same points of each session's life: in the order of ManagerConfig.Parts
// while a session starts, in reverse order while it ends. A new per-session concern is
// one new part, never another map on the Manager.
//
// The points, and the orderings they keep:
//
//	Check     before anything is recorded (a 4xx refuses the create)
//	Prepare   session PENDING in the store, before launch (may add to LaunchOptions)
//	Started   browser ready, before RUNNING and before any client can connect
//	Ending    end decided, before it is stored; quick (the API answers after it)
//	Stopped   end stored and every browser process gone, before Close removes its files
//	Ended     after Close, or alone when the browser never started
type SessionPart interface {
	// Check validates what a create request asks of this part, before the session is
	// recorded. Its error refuses the create: a *Error with a 4xx code for the
	// request's faults (a context of another project is CodeNotFound). Check may fill
	// in what it resolved for the Prepare of every part, which runs after all the
	// Checks (internal/certs sets req.CACertificates, which the setup part's plan uses).
	Check(ctx context.Context, projectID string, req *CreateSessionRequest) error
	// Prepare runs once the session is recorded PENDING, before its browser launches,
	// and may add to opts (a profile, extensions, flags: any of them makes the launch
	// cold). A nil PartRun means the part has nothing to do for this session. An error
	// fails the session (ERROR); the runs prepared before it get Ended.
	Prepare(ctx context.Context, s *Session, req *CreateSessionRequest, opts *LaunchOptions) (PartRun, error)
}

// A PartRun is one part's state for one session. The Manager calls its methods from
// one goroutine at a time, each at most once, Ended always and last.
type PartRun interface {
	// Started runs once the browser is ready, before the session is RUNNING. An error
	// fails the create: the browser is closed, then every run gets Ended.
	Started(ctx context.Context, b Browser) error
	// Ending runs once the session's end is decided, before the end is stored, while
	// the browser may still run; it must not wait on the browser. The function it
	// returns (nil for none) sets the part's final values on the end record, such as
	// the proxy's byte count; it may run more than once when the write is retried.
	Ending(status SessionStatus) func(*Session)
	// Stopped runs once the end is stored and every process of the browser is gone
	// (ProfileBrowser.Stop), before Close removes the browser's directory: the time to
	// read what the browser left (a profile to write back, downloads). Nothing in the
	// directory can change any more; it is still the browser's, so read it as hostile.
	Stopped(ctx context.Context, b Browser, status SessionStatus)
	// Ended runs last, after the browser is closed, or without the calls above when the
	// browser never started or the create failed. It frees all that the run holds.
	Ended(ctx context.Context)
}

// NopPartRun implements PartRun doing nothing; embed it to implement only the points a
// part needs.
type NopPartRun struct{}

// Started does nothing.
func (NopPartRun) Started(context.Context, Browser) error { return nil }

// Ending does nothing.
func (NopPartRun) Ending(SessionStatus) func(*Session) { return nil }

// Stopped does nothing.
func (NopPartRun) Stopped(context.Context, Browser, SessionStatus) {}

// Ended does nothing.
func (NopPartRun) Ended(context.Context) {}

// Run returns the run of part p for a session live on this node, or nil (not live
// here, ending, or p has nothing to do for it). Parts use it to serve API calls about
// their live sessions without keeping a map of their own.
func (m *Manager) Run(sessionID string, p SessionPart) PartRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := m.live[sessionID]
	if ls == nil {
		return nil
	}
	for i, q := range m.parts {
		if q == p && i < len(ls.runs) {
			return ls.runs[i]
		}
	}
	return nil
}

// prepareParts runs every part's Prepare in order; runs[i] is part i's run (nil for
// none). On an error the runs prepared so far get Ended.
func (m *Manager) prepareParts(ctx context.Context, s *Session, req *CreateSessionRequest, opts *LaunchOptions) ([]PartRun, error) {
	runs := make([]PartRun, len(m.parts))
	for i, part := range m.parts {
		r, err := part.Prepare(ctx, s, req, opts)
		if err != nil {
			endParts(context.WithoutCancel(ctx), runs)
			return nil, err
		}
		runs[i] = r
	}
	return runs, nil
}

// startParts tells every run, in order, that the browser is ready.
func startParts(ctx context.Context, runs []PartRun, b Browser) error {
	for _, r := range runs {
		if r != nil {
			if err := r.Started(ctx, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// endParts calls Ended on every run, in reverse order.
func endParts(ctx context.Context, runs []PartRun) {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i] != nil {
			runs[i].Ended(ctx)
		}
	}
}
