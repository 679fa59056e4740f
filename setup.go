package browserd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// SessionProxy is a session's forward proxy, the only way out of its browser's sandbox:
// Chromium sends all its traffic to it, and it routes each connection by host, refusing
// the server's own networks unless the operator allows them (internal/proxy).
type SessionProxy interface {
	// ServeConn serves one connection from the browser in the background, until it or
	// the proxy closes; an error means the proxy took nothing, and c is the caller's.
	ServeConn(c net.Conn) error
	// Bytes is how many bytes went to and came from upstream proxies so far.
	Bytes() int64
	// Close stops the proxy and closes every connection it holds.
	Close() error
}

// ProxyStarter starts session proxies.
type ProxyStarter interface {
	StartProxy(sessionID string, plan NetworkPlan) (SessionProxy, error)
}

// Emulator applies an Emulation over CDP to every page of a running browser until the
// returned agent is closed (internal/cdpagent).
type Emulator interface {
	Emulate(ctx context.Context, b Browser, e Emulation) (io.Closer, error)
}

// SetupConfig configures what sessions get beyond a plain browser: proxies, emulation
// and navigation rules. Sessions that need a part that is not configured are refused.
type SetupConfig struct {
	Proxies  ProxyStarter
	Emulator Emulator
	// ManagedProxies are the upstreams behind proxies:true and type "browserbase" rules;
	// each session uses one, chosen round-robin.
	ManagedProxies []ProxyUpstream
	// ChromeVersion is Chromium's full version, for the user agent flag; "" leaves the
	// user agent to the Emulator.
	ChromeVersion string
	// BytesInterval is how often a live session's proxyBytes is written to the store [5s].
	BytesInterval time.Duration
}

// setupPart is the SessionPart that gives every session its network (the session
// proxy, the browser's only way out) and, when its settings need one, the emulation
// agent.
type setupPart struct {
	m    *Manager
	next atomic.Int64 // round-robin over managed proxies
}

// setupRun is what one session runs beside its browser.
type setupRun struct {
	NopPartRun
	part      *setupPart
	id        string
	projectID string
	plan      NetworkPlan
	emulation Emulation

	mu    sync.Mutex
	proxy SessionProxy
	agent io.Closer
	done  chan struct{} // closed by stop
	once  sync.Once
}

// plan validates and plans what a create request needs; managed is the index of the
// managed proxy to use.
func (p *setupPart) plan(req *CreateSessionRequest, viewport Viewport, managed int) (NetworkPlan, Emulation, error) {
	cfg := p.m.cfg.Setup
	given := false
	if vp := req.Settings.Viewport; vp != nil && (vp.Width > 0 || vp.Height > 0) {
		given = true
	}
	routes, err := PlanProxies(*req, cfg.ManagedProxies, managed)
	if err != nil {
		return NetworkPlan{}, Emulation{}, err
	}
	plan := NetworkPlan{Routes: routes, BlockAds: req.Settings.BlockAds}
	for _, c := range req.CACertificates { // resolved by the certificates part's Check
		plan.RootCAs = append(plan.RootCAs, c.PEM)
	}
	emulation := EmulationFor(req.Settings, viewport, given)
	if (len(routes) > 0 || plan.BlockAds) && cfg.Proxies == nil {
		return plan, emulation, Errorf(CodeInvalid, "this server cannot run session proxies (proxies, browserSettings.blockAds)")
	}
	if emulation.NeedsAgent() && cfg.Emulator == nil {
		return plan, emulation, Errorf(CodeInvalid, "this server cannot emulate browser settings (browserSettings.os, fingerprint, allowedDomains, advancedStealth, verified)")
	}
	return plan, emulation, nil
}

// Check refuses what this server cannot run (proxies without a proxy starter, settings
// without an emulator) and invalid proxy rules.
func (p *setupPart) Check(_ context.Context, _ string, req *CreateSessionRequest) error {
	_, _, err := p.plan(req, p.m.viewportFor(req), 0)
	return err
}

// Prepare plans the session's network and emulation and adds the emulation's flags
// (a user agent) to the launch.
func (p *setupPart) Prepare(_ context.Context, s *Session, req *CreateSessionRequest, opts *LaunchOptions) (PartRun, error) {
	plan, emulation, err := p.plan(req, opts.Viewport, int(p.next.Add(1)-1))
	if err != nil {
		return nil, err
	}
	opts.Args = append(opts.Args, emulation.LaunchArgs(p.m.cfg.Setup.ChromeVersion)...)
	return &setupRun{part: p, id: s.ID, projectID: s.ProjectID, plan: plan, emulation: emulation, done: make(chan struct{})}, nil
}

// Started starts the session's proxy as the browser's way out, and the emulation agent
// on the ready browser. The proxy's routes are the session's own, so a warm browser
// serves any session (none of this is a launch flag).
func (r *setupRun) Started(ctx context.Context, b Browser) error {
	m := r.part.m
	if m.cfg.Setup.Proxies != nil {
		p, err := m.cfg.Setup.Proxies.StartProxy(r.id, r.plan)
		if err != nil {
			return fmt.Errorf("start session proxy: %w", err)
		}
		r.mu.Lock()
		r.proxy = p
		r.mu.Unlock()
		b.SetEgress(func(c net.Conn) {
			if err := p.ServeConn(c); err != nil {
				c.Close() // the proxy is closing: the browser sees a refused connection
			}
		})
		if r.plan.Proxied() {
			interval := m.cfg.Setup.BytesInterval
			if interval <= 0 {
				interval = 5 * time.Second
			}
			m.wg.Go(func() { r.flushBytesLoop(p, interval) }) // exits when stop closes done
		}
	}
	if !r.emulation.NeedsAgent() {
		return nil
	}
	e := r.emulation
	e.Blocked = func(url string) { m.emitBlocked(r.projectID, r.id, url) } // events.go
	a, err := m.cfg.Setup.Emulator.Emulate(ctx, b, e)
	if err != nil {
		return fmt.Errorf("emulate browser settings: %w", err)
	}
	r.mu.Lock()
	r.agent = a
	r.mu.Unlock()
	return nil
}

// Ending stops the agent and the proxy, and sets the final proxyBytes on the end record
// (so the end shows every byte).
func (r *setupRun) Ending(SessionStatus) func(*Session) {
	p := r.stop()
	if p == nil || !r.plan.Proxied() {
		return nil
	}
	n := p.Bytes()
	return func(s *Session) {
		if n > s.ProxyBytes {
			s.ProxyBytes = n
		}
	}
}

// Ended stops what Ending did not (a create that failed).
func (r *setupRun) Ended(context.Context) { r.stop() }

// stop stops the session's agent and proxy, once, and returns the proxy (nil if none).
func (r *setupRun) stop() SessionProxy {
	r.mu.Lock()
	p, a := r.proxy, r.agent
	r.mu.Unlock()
	r.once.Do(func() {
		close(r.done)
		m := r.part.m
		if a != nil {
			if err := a.Close(); err != nil {
				m.log.Warn("close emulation agent", "session_id", r.id, "err", err)
			}
		}
		if p != nil {
			if err := p.Close(); err != nil {
				m.log.Warn("close session proxy", "session_id", r.id, "err", err)
			}
		}
	})
	return p
}

func (r *setupRun) flushBytesLoop(p SessionProxy, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.part.m.flushBytes(r.id, p.Bytes())
		}
	}
}

var errUnchanged = errors.New("unchanged")

// flushBytes stores a session's proxyBytes when it grew.
func (m *Manager) flushBytes(id string, n int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 10*time.Second)
	defer cancel()
	_, err := m.store.UpdateSession(ctx, id, func(s *Session) error {
		if n <= s.ProxyBytes {
			return errUnchanged
		}
		s.ProxyBytes = n
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		m.log.Error("store proxy bytes", "session_id", id, "err", err)
	}
}
