package browserd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// SessionProxy is a session's forward proxy: Chromium sends all its traffic to it, and
// it routes each connection by host (internal/proxy).
type SessionProxy interface {
	// Addr is the proxy's loopback address, host:port.
	Addr() string
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
	needProxy bool

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
	st.needProxy = len(routes) > 0 || st.plan.BlockAds
	if st.needProxy && cfg.Proxies == nil {
		return nil, Errorf(CodeInvalid, "this server cannot run session proxies (proxies, browserSettings.blockAds)")
	}
	if st.emulation.NeedsAgent() && cfg.Emulator == nil {
		return nil, Errorf(CodeInvalid, "this server cannot emulate browser settings (browserSettings.os, fingerprint, allowedDomains, advancedStealth, verified)")
	}
	return st, nil
}

// launchWithSetup starts the session's setup, launches its browser (see launch) and
// starts the emulation agent on it. On failure nothing of it is left running.
func (m *Manager) launchWithSetup(ctx context.Context, id string, st *sessionSetup, opts LaunchOptions) (Browser, error) {
	if err := m.startSetup(id, st, &opts); err != nil {
		m.endSetup(id)
		return nil, err
	}
	b, err := m.launch(ctx, opts)
	if err == nil {
		if err = m.attachSetup(ctx, id, b); err != nil {
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

// startSetup starts the session's proxy and adds the launch flags to opts. endSetup
// undoes it.
func (m *Manager) startSetup(id string, st *sessionSetup, opts *LaunchOptions) error {
	opts.Args = append(opts.Args, st.emulation.LaunchArgs(m.cfg.Setup.ChromeVersion)...)
	if !st.needProxy && !st.emulation.NeedsAgent() {
		return nil
	}
	m.setups.mu.Lock()
	if m.setups.byID == nil {
		m.setups.byID = make(map[string]*sessionSetup)
	}
	m.setups.byID[id] = st
	m.setups.mu.Unlock()
	if !st.needProxy {
		return nil
	}
	p, err := m.cfg.Setup.Proxies.StartProxy(id, st.plan)
	if err != nil {
		return fmt.Errorf("start session proxy: %w", err)
	}
	st.proxy = p
	// <-loopback: Chromium would send localhost and 127.0.0.1 directly otherwise, around
	// the rules and the byte count.
	opts.Args = append(opts.Args, "--proxy-server=http://"+p.Addr(), "--proxy-bypass-list=<-loopback>")
	if st.plan.Proxied() {
		interval := m.cfg.Setup.BytesInterval
		if interval <= 0 {
			interval = 5 * time.Second
		}
		m.wg.Go(func() { m.flushBytesLoop(id, st, interval) }) // exits when endSetup closes done
	}
	return nil
}

// attachSetup starts the emulation agent on a ready browser.
func (m *Manager) attachSetup(ctx context.Context, id string, b Browser) error {
	m.setups.mu.Lock()
	st := m.setups.byID[id]
	m.setups.mu.Unlock()
	if st == nil || !st.emulation.NeedsAgent() {
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
		if st.proxy == nil {
			return
		}
		if err := st.proxy.Close(); err != nil {
			m.log.Warn("close session proxy", "session_id", id, "err", err)
		}
		if st.plan.Proxied() {
			m.flushBytes(id, st.proxy.Bytes())
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
