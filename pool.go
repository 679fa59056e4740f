package browserd

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// PoolConfig configures the warm pool: browsers launched ahead of demand with the
// default launch options, so that a create which needs nothing else takes one without
// waiting for Chromium to start.
type PoolConfig struct {
	// Size is how many ready browsers the pool keeps; 0 turns the pool off.
	Size int
	// MaxMemory caps the memory (PSS of their process trees, bytes) the warm browsers may
	// use together; 0 means no cap beyond Size. Needs a Browser that implements
	// MemoryReporter, else only Size counts.
	MaxMemory int64
	// IdleExpiry empties the pool when no create has taken a browser for this long, and
	// it fills again on the next create; 0 never empties it.
	IdleExpiry time.Duration
}

// MemoryReporter is implemented by browsers that can measure themselves.
type MemoryReporter interface {
	// Memory returns the proportional set size of the browser's whole process tree.
	Memory() (int64, error)
}

// PoolStats describe the warm pool at one moment.
type PoolStats struct {
	Ready     int   // browsers waiting to be taken
	Launching int   // refills in progress
	Hits      int64 // creates served from the pool
	Misses    int64 // creates that launched cold (options differ, or pool empty)
}

// pool holds warm browsers. It never hands a browser to two sessions (take removes it
// under the lock) and never reuses one: a browser leaves the pool once, for a session,
// and is closed when that session ends. Refills take launch slots only when no cold
// create is waiting for one.
type pool struct {
	m        *Manager
	cfg      PoolConfig
	template LaunchOptions   // SessionID empty
	ctx      context.Context // cancelled when the Manager starts closing
	stop     context.CancelFunc

	kick chan struct{} // wakes the refill loop; buffered, never blocks

	readyMu sync.Mutex
	readyC  chan struct{} // closed (and replaced) when a warm browser becomes ready

	mu         sync.Mutex
	ready      []*warm
	launching  int
	lastTake   time.Time
	drained    bool // emptied by IdleExpiry; refilled on the next take
	perBrowser int64

	hits, misses atomic.Int64
	coldWaiting  atomic.Int32
}

type warm struct {
	b     Browser
	taken chan struct{} // closed when a session takes it
}

// defaultBrowserMemory is the guess for a browser's PSS before one was measured
// (research/chromium-limits.md §4: ≈110 MiB with the lean flags).
const defaultBrowserMemory = 128 << 20

func newPool(m *Manager, cfg PoolConfig, template LaunchOptions) *pool {
	template.SessionID = ""
	ctx, stop := context.WithCancel(m.ctx)
	return &pool{
		m: m, cfg: cfg, template: template, ctx: ctx, stop: stop,
		kick:       make(chan struct{}, 1),
		readyC:     make(chan struct{}),
		lastTake:   time.Now(),
		perBrowser: defaultBrowserMemory,
	}
}

// matches reports whether a launch with opts can use a warm browser: its options must
// equal the pool's apart from the session id. New LaunchOptions fields thus make a
// launch cold until the pool learns about them.
func (p *pool) matches(opts LaunchOptions) bool {
	opts.SessionID = ""
	return reflect.DeepEqual(opts, p.template)
}

// take returns a ready browser for opts, or nil when the launch must be cold. It
// counts a hit or a miss; a create that misses may still get a browser from takeReady.
func (p *pool) take(opts LaunchOptions) Browser {
	if p == nil {
		return nil
	}
	if !p.matches(opts) {
		p.misses.Add(1)
		return nil
	}
	p.mu.Lock()
	p.lastTake = time.Now()
	p.drained = false
	p.mu.Unlock()
	b := p.takeReady()
	p.wake()
	if b == nil {
		p.misses.Add(1)
		return nil
	}
	p.hits.Add(1)
	return b
}

// takeReady removes and returns a ready warm browser, or nil.
func (p *pool) takeReady() Browser {
	p.mu.Lock()
	var w *warm
	for len(p.ready) > 0 && w == nil {
		w = p.ready[0]
		p.ready = p.ready[1:]
		select {
		case <-w.b.Exited():
			w = nil // its watcher cleans it up
		default:
		}
	}
	p.mu.Unlock()
	if w == nil {
		return nil
	}
	close(w.taken)
	return w.b
}

// readySignal returns a channel that is closed when the next warm browser is ready.
func (p *pool) readySignal() <-chan struct{} {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	return p.readyC
}

func (p *pool) signalReady() {
	p.readyMu.Lock()
	close(p.readyC)
	p.readyC = make(chan struct{})
	p.readyMu.Unlock()
}

func (p *pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stats returns the pool's current state.
func (p *pool) stats() PoolStats {
	if p == nil {
		return PoolStats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Ready: len(p.ready), Launching: p.launching, Hits: p.hits.Load(), Misses: p.misses.Load()}
}

// run keeps the pool full until the Manager closes, then closes the warm browsers.
func (p *pool) run() {
	defer p.drain()
	var expiry <-chan time.Time
	if p.cfg.IdleExpiry > 0 {
		t := time.NewTicker(p.cfg.IdleExpiry / 4)
		defer t.Stop()
		expiry = t.C
	}
	for {
		p.fill()
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-expiry:
			p.mu.Lock()
			idle := time.Since(p.lastTake) >= p.cfg.IdleExpiry && !p.drained
			if idle {
				p.drained = true
			}
			p.mu.Unlock()
			if idle {
				p.m.log.Info("warm pool idle; emptying it", "idle_expiry", p.cfg.IdleExpiry)
				p.drain()
			}
		}
	}
}

// fill starts refills until the pool is full or over its memory budget. A launch slot
// is taken only when no cold create waits, so warm refills never delay a create.
func (p *pool) fill() {
	for {
		p.mu.Lock()
		need := !p.drained && len(p.ready)+p.launching < p.cfg.Size
		if need && p.cfg.MaxMemory > 0 {
			need = int64(len(p.ready)+p.launching+1)*p.perBrowser <= p.cfg.MaxMemory
		}
		if !need || p.coldWaiting.Load() > 0 {
			p.mu.Unlock()
			return
		}
		p.launching++
		p.mu.Unlock()
		select {
		case p.m.launchSem <- struct{}{}:
		case <-p.ctx.Done():
			p.doneLaunching()
			return
		}
		if p.coldWaiting.Load() > 0 { // a create came while we waited: let it go first
			<-p.m.launchSem
			p.doneLaunching()
			return
		}
		p.m.wg.Go(p.launchOne)
	}
}

func (p *pool) doneLaunching() {
	p.mu.Lock()
	p.launching--
	p.mu.Unlock()
}

// launchOne launches one warm browser, holding the launch slot fill took.
func (p *pool) launchOne() {
	opts := p.template
	opts.SessionID = "warm-" + NewID()
	b, err := p.m.startBrowser(p.ctx, opts, false)
	if err != nil {
		<-p.m.launchSem
		p.doneLaunching()
		if p.ctx.Err() == nil {
			p.m.log.Warn("warm pool launch failed", "err", err)
			// Do not spin on a broken launcher: the next take or tick retries.
		}
		return
	}
	w := &warm{b: b, taken: make(chan struct{})}
	if mr, ok := b.(MemoryReporter); ok {
		if n, err := mr.Memory(); err == nil && n > 0 {
			p.mu.Lock()
			p.perBrowser = (p.perBrowser + n) / 2 // a running estimate for the budget
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	p.launching--
	closing := p.ctx.Err() != nil || p.drained
	if !closing {
		p.ready = append(p.ready, w)
	}
	p.mu.Unlock()
	if closing {
		<-p.m.launchSem
		p.closeBrowser(b)
		return
	}
	p.m.wg.Go(func() { p.watch(w) })
	// Tell creates waiting for a launch slot before giving the slot back, so that they
	// take this browser rather than start another.
	p.signalReady()
	<-p.m.launchSem
	p.wake()
}

// watch removes a warm browser that exits before it is taken.
func (p *pool) watch(w *warm) {
	select {
	case <-w.taken:
		return
	case <-w.b.Exited():
	case <-p.ctx.Done():
		return // drain closes it
	}
	p.mu.Lock()
	found := false
	for i, r := range p.ready {
		if r == w {
			p.ready = append(p.ready[:i:i], p.ready[i+1:]...)
			found = true
			break
		}
	}
	p.mu.Unlock()
	if !found {
		return // taken or drained at the same moment: no longer ours
	}
	p.m.log.Warn("warm browser exited while waiting; replacing it", "pid", w.b.PID())
	p.closeBrowser(w.b)
	p.wake()
}

// drain closes every warm browser that is waiting.
func (p *pool) drain() {
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, w := range ready {
		close(w.taken)
		p.closeBrowser(w.b)
	}
}

func (p *pool) closeBrowser(b Browser) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.m.ctx), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		p.m.log.Warn("close warm browser", "pid", b.PID(), "err", err)
	}
}
