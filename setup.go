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

// sessionSetup is what one session runs beside its browser.
type sessionSetup struct {
	plan      NetworkPlan
	emulation Emulation

	proxy SessionProxy
	agent io.Closer
	done  chan struct{} // closed by endSetup
	once  sync.Once
}

// setups are the Manager's session setups, by session id.
type setups struct {
	mu   sync.Mutex
	byID map[string]*sessionSetup
	next atomic.Int64 // round-robin over managed proxies
}

// planSetup validates and plans what a create request needs, before anything starts.
func (m *Manager) planSetup(req CreateSessionRequest) (*sessionSetup, error) {
	cfg := m.cfg.Setup
	viewport, given := m.cfg.DefaultViewport, false
	if vp := req.Settings.Viewport; vp != nil && (vp.Width > 0 || vp.Height > 0) {
		given = true
		if vp.Width > 0 {
			viewport.Width = vp.Width
		}
		if vp.Height > 0 {
			viewport.Height = vp.Height
		}
	}
	routes, err := PlanProxies(req, cfg.ManagedProxies, int(m.setups.next.Add(1)-1))
	if err != nil {
		return nil, err
	}
	st := &sessionSetup{
		plan:      NetworkPlan{Routes: routes, BlockAds: req.Settings.BlockAds},
		emulation: EmulationFor(req.Settings, viewport, given),
		done:      make(chan struct{}),
	}
	if (len(routes) > 0 || st.plan.BlockAds) && cfg.Proxies == nil {
		return nil, Errorf(CodeInvalid, "this server cannot run session proxies (proxies, browserSettings.blockAds)")
	}
	if st.emulation.NeedsAgent() && cfg.Emulator == nil {
		return nil, Errorf(CodeInvalid, "this server cannot emulate browser settings (browserSettings.os, fingerprint, allowedDomains, advancedStealth, verified)")
	}
	return st, nil
}

// launchWithSetup registers the session's setup, launches its browser (see launch),
// gives the browser its network (the session proxy) and starts the emulation agent on
// it. On failure nothing of it is left running.
func (m *Manager) launchWithSetup(ctx context.Context, id string, st *sessionSetup, opts LaunchOptions) (Browser, error) {
	opts.Args = append(opts.Args, st.emulation.LaunchArgs(m.cfg.Setup.ChromeVersion)...)
	m.setups.mu.Lock()
	if m.setups.byID == nil {
		m.setups.byID = make(map[string]*sessionSetup)
	}
	m.setups.byID[id] = st
	m.setups.mu.Unlock()
	b, err := m.launch(ctx, opts)
	if err == nil {
		if err = m.attachSetup(ctx, id, st, b); err != nil {
			if cerr := b.Close(context.WithoutCancel(ctx)); cerr != nil {
				m.log.Warn("close browser", "session_id", id, "err", cerr)
			}
		}
	}
	if err != nil {
		m.endSetup(id)
		return nil, err
	}
	return b, nil
}

// attachSetup starts the session's proxy as the browser's way out, and the emulation
// agent on the ready browser. The proxy's routes are the session's own, so a warm
// browser serves any session (none of this is a launch flag).
func (m *Manager) attachSetup(ctx context.Context, id string, st *sessionSetup, b Browser) error {
	if m.cfg.Setup.Proxies != nil {
		p, err := m.cfg.Setup.Proxies.StartProxy(id, st.plan)
		if err != nil {
			return fmt.Errorf("start session proxy: %w", err)
		}
		m.setups.mu.Lock()
		st.proxy = p
		m.setups.mu.Unlock()
		b.SetEgress(func(c net.Conn) {
			if err := p.ServeConn(c); err != nil {
				c.Close() // the proxy is closing: the browser sees a refused connection
			}
		})
		if st.plan.Proxied() {
			interval := m.cfg.Setup.BytesInterval
			if interval <= 0 {
				interval = 5 * time.Second
			}
			m.wg.Go(func() { m.flushBytesLoop(id, st, interval) }) // exits when endSetup closes done
		}
	}
	if !st.emulation.NeedsAgent() {
		return nil
	}
	a, err := m.cfg.Setup.Emulator.Emulate(ctx, b, st.emulation)
	if err != nil {
		return fmt.Errorf("emulate browser settings: %w", err)
	}
	m.setups.mu.Lock()
	st.agent = a
	m.setups.mu.Unlock()
	return nil
}

// endSetup stops a session's agent and proxy and writes its final proxyBytes. It is
// idempotent and does nothing for sessions without a setup.
func (m *Manager) endSetup(id string) {
	m.setups.mu.Lock()
	st := m.setups.byID[id]
	delete(m.setups.byID, id)
	m.setups.mu.Unlock()
	if st == nil {
		return
	}
	st.once.Do(func() {
		close(st.done)
		if st.agent != nil {
			if err := st.agent.Close(); err != nil {
				m.log.Warn("close emulation agent", "session_id", id, "err", err)
			}
		}
		m.setups.mu.Lock()
		p := st.proxy
		m.setups.mu.Unlock()
		if p == nil {
			return
		}
		if err := p.Close(); err != nil {
			m.log.Warn("close session proxy", "session_id", id, "err", err)
		}
		if st.plan.Proxied() {
			m.flushBytes(id, p.Bytes())
		}
	})
}

func (m *Manager) flushBytesLoop(id string, st *sessionSetup, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-st.done:
			return
		case <-t.C:
			m.flushBytes(id, st.proxy.Bytes())
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
