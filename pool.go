package browserd

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PoolConfig configures the warm pool: browsers launched ahead of demand, so that a
// create takes one without waiting for Chromium to start. The pool keeps Size browsers
// with the default launch options (more while creates come faster than launches), and,
// when Keyed is set, browsers for the other launches creates asked for lately: a
// context's profile, an extension, a viewport, an OS.
type PoolConfig struct {
	// Size is how many ready browsers with the default options the pool keeps while
	// creates are rare; 0 turns the pool off. While creates come faster than browsers
	// launch, it keeps up to 4×Size, as many as the observed rate needs.
	Size int
	// MaxMemory caps the memory (PSS of their process trees, bytes) the warm browsers may
	// use together; 0 means no cap beyond the counts. Needs a Browser that implements
	// MemoryReporter, else a default estimate per browser counts.
	MaxMemory int64
	// IdleExpiry empties the pool when no create has taken a browser for this long, and
	// it fills again on the next create; 0 never empties it.
	IdleExpiry time.Duration
	// Keyed is how many warm browsers, all keys together, the pool may keep for launches
	// other than the default one. A key gets one after a create asked for it (the create
	// itself launches cold) and is refilled each time a create takes one; 0 keeps none.
	Keyed int
	// KeyedIdle closes the warm browsers of a key that no create asked for in this long
	// (they may hold a context's data); 0 keeps them until IdleExpiry.
	KeyedIdle time.Duration
}

// MemoryReporter is implemented by browsers that can measure themselves.
type MemoryReporter interface {
	// Memory returns the proportional set size of the browser's whole process tree.
	Memory() (int64, error)
}

// PoolStats describe the warm pool at one moment.
type PoolStats struct {
	Ready     int // browsers waiting to be taken, all keys
	Launching int // refills in progress, all keys
	// KeyedReady and KeyedLaunching are the part of Ready and Launching for keys other
	// than the default one (PoolConfig.Keyed).
	KeyedReady, KeyedLaunching int
	Keys                       int   // launch keys with warm browsers or refills, the default one included
	Hits                       int64 // creates served from the pool
	Misses                     int64 // creates that launched cold (no warm browser for their options)
}

// The pool's fixed policy.
const (
	// defaultBrowserMemory is the guess for a browser's PSS before one was measured
	// (research/chromium-limits.md §4: ≈110 MiB with the lean flags).
	defaultBrowserMemory = 128 << 20
	// rateWindow is how far back takes count for the observed create rate.
	rateWindow = 10 * time.Second
	// rateSpan is the shortest span the create rate is measured over.
	rateSpan = 2 * time.Second
	// rateMargin is how many more browsers than the rate needs during one launch a key
	// gets, for the jitter of creates and launches.
	rateMargin = 1.5
	// burstFactor bounds the default key's browsers at burstFactor×Size.
	burstFactor = 4
	// refillDelay defers a refill after a take while the key still has a ready browser,
	// so that the launch does not compete with the session just handed out (its first
	// navigation). An empty key refills at once.
	refillDelay = 500 * time.Millisecond
	// tick is how often the pool trims browsers beyond what the rate needs and expires
	// idle keys.
	tick = time.Second
)

// poolDeps is what the pool needs from its owner (the Manager).
type poolDeps struct {
	ctx context.Context // cancelled when the owner closes: the pool drains
	// launch starts a browser and waits until it is ready (Manager.startBrowser); it
	// gives started the browser as soon as its process runs.
	launch func(ctx context.Context, opts LaunchOptions, started func(Browser)) (Browser, error)
	slots  chan struct{} // launch slots, shared with cold creates
	wg     *sync.WaitGroup
	log    *slog.Logger
}

// pool holds warm browsers on shelves, one per launch key. It never hands a browser
// to two sessions (take removes it under the lock) and never reuses one: a browser
// leaves the pool once, for a session, and is closed when that session ends. Refills
// take launch slots only when no cold create waits for one, and launch in the
// background (LaunchOptions.Background) where the launcher can raise them again.
type pool struct {
	d        poolDeps
	cfg      PoolConfig
	plainKey string
	ctx      context.Context
	stop     context.CancelFunc
	kick     chan struct{} // wakes the refill loop; buffered, never blocks

	mu         sync.Mutex
	shelves    map[string]*shelf
	perBrowser int64         // running estimate of a browser's PSS
	launchDur  time.Duration // running estimate of a warm launch's duration

	hits, misses atomic.Int64
	coldWaiting  atomic.Int32
}

// shelf holds the warm browsers of one launch key.
type shelf struct {
	key       string
	plain     bool
	template  LaunchOptions // what refills launch; SessionID empty
	version   string        // of template's files: older warm browsers are stale
	ready     []*warm
	launching int
	starting  []Browser   // refills whose process runs, not yet ready
	hurried   bool        // a create waits for a refill: raise the ones starting
	takes     []time.Time // takes within rateWindow
	lastUse   time.Time   // last take or miss
	drained   bool        // plain: emptied by IdleExpiry; refilled on the next take
	readyC    chan struct{}
}

type warm struct {
	b       Browser
	version string
	taken   chan struct{} // closed when a session takes it or the pool drops it
}

func newPool(d poolDeps, cfg PoolConfig, template LaunchOptions) *pool {
	ctx, stop := context.WithCancel(d.ctx)
	key, _ := launchKey(template)
	p := &pool{
		d: d, cfg: cfg, plainKey: key, ctx: ctx, stop: stop,
		kick:       make(chan struct{}, 1),
		shelves:    make(map[string]*shelf),
		perBrowser: defaultBrowserMemory,
		launchDur:  time.Second,
	}
	p.shelves[key] = p.newShelf(key, template)
	return p
}

func (p *pool) newShelf(key string, opts LaunchOptions) *shelf {
	opts.SessionID = ""
	return &shelf{key: key, plain: key == p.plainKey, template: opts, version: filesVersion(opts),
		lastUse: time.Now(), readyC: make(chan struct{})}
}

// launchKey is what makes launches interchangeable: their flags, viewport and the keys
// of their files. ok is false for a launch with a profile or extensions given as paths,
// which cannot be made again.
func launchKey(opts LaunchOptions) (key string, ok bool) {
	if opts.Profile != "" || len(opts.Extensions) > 0 || len(opts.CACertificates) > 0 {
		return "", false
	}
	var b strings.Builder // length-prefixed: no two option sets give one key
	fmt.Fprintf(&b, "%dx%d", opts.Viewport.Width, opts.Viewport.Height)
	for _, a := range opts.Args {
		fmt.Fprintf(&b, " a%d:%s", len(a), a)
	}
	for _, f := range opts.Files {
		fmt.Fprintf(&b, " f%d:%s", len(f.Key), f.Key)
	}
	return b.String(), true
}

// filesVersion is the version of what a launch's files hold.
func filesVersion(opts LaunchOptions) string {
	var b strings.Builder
	for _, f := range opts.Files {
		fmt.Fprintf(&b, "%d:%s", len(f.Version), f.Version)
	}
	return b.String()
}

// take returns a ready browser for opts, or nil when the launch must be cold. It
// counts a hit or a miss (a create that misses may still get a browser from
// takeReady), and tells the pool what creates ask for: a miss on a new key makes a
// shelf for it when Keyed allows.
func (p *pool) take(opts LaunchOptions) Browser {
	if p == nil {
		return nil
	}
	key, ok := launchKey(opts)
	if !ok {
		p.misses.Add(1)
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	sh := p.shelves[key]
	if sh == nil && p.cfg.Keyed > 0 && p.ctx.Err() == nil {
		sh = p.newShelf(key, opts)
		p.shelves[key] = sh
	}
	if sh == nil {
		p.mu.Unlock()
		p.misses.Add(1)
		return nil
	}
	sh.lastUse, sh.drained = now, false
	sh.takes = append(prune(sh.takes, now), now)
	stale := sh.refresh(opts)
	p.mu.Unlock()
	p.closeAll(stale)
	b := p.takeReady(opts)
	if b == nil {
		p.misses.Add(1) // the caller wakes the refills once it counts as a cold create
		return nil
	}
	p.hits.Add(1)
	p.wakeAfter()
	return b
}

// touch counts a cold launch for opts as a use of its shelf, now that it is over: the
// idle expiry runs from the end of the last create, however long its launch took.
func (p *pool) touch(opts LaunchOptions) {
	if p == nil {
		return
	}
	key, ok := launchKey(opts)
	if !ok {
		return
	}
	p.mu.Lock()
	if sh := p.shelves[key]; sh != nil {
		sh.lastUse, sh.drained = time.Now(), false
	}
	p.mu.Unlock()
}

// refresh makes the shelf refill with opts' files when they are a newer version, and
// returns the ready browsers that hold an older one (the caller closes them).
func (sh *shelf) refresh(opts LaunchOptions) (stale []*warm) {
	v := filesVersion(opts)
	if v == sh.version {
		return nil
	}
	opts.SessionID = ""
	sh.template, sh.version = opts, v
	keep := sh.ready[:0:0]
	for _, w := range sh.ready {
		if w.version == v {
			keep = append(keep, w)
		} else {
			stale = append(stale, w)
		}
	}
	sh.ready = keep
	return stale
}

// takeReady removes and returns a ready warm browser for opts, raised to a session's
// priority, or nil.
func (p *pool) takeReady(opts LaunchOptions) Browser {
	if p == nil {
		return nil
	}
	key, ok := launchKey(opts)
	if !ok {
		return nil
	}
	v := filesVersion(opts)
	for {
		p.mu.Lock()
		sh := p.shelves[key]
		var w *warm
		for sh != nil && w == nil {
			i := slices.IndexFunc(sh.ready, func(w *warm) bool { return w.version == v })
			if i < 0 {
				break
			}
			w = sh.ready[i]
			sh.ready = slices.Delete(sh.ready, i, i+1)
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
		if f, ok := w.b.(Foregrounder); ok {
			if err := f.Foreground(); err != nil {
				// A browser left at background priority would slow its session: drop it.
				p.d.log.Warn("raise warm browser to session priority", "pid", w.b.PID(), "err", err)
				p.d.wg.Go(func() { p.closeBrowser(w.b) })
				continue
			}
		}
		return w.b
	}
}

// hurry raises the refills of opts' key under way to a session's priority: a create
// waits for one of them, and a background launch could starve on a busy machine.
func (p *pool) hurry(opts LaunchOptions) {
	key, ok := launchKey(opts)
	if !ok {
		return
	}
	p.mu.Lock()
	var raise []Browser
	if sh := p.shelves[key]; sh != nil {
		sh.hurried = true
		raise = slices.Clone(sh.starting)
	}
	p.mu.Unlock()
	for _, b := range raise {
		p.foreground(b)
	}
}

// foreground raises a background browser, logging a failure (the take checks again).
func (p *pool) foreground(b Browser) {
	if f, ok := b.(Foregrounder); ok {
		if err := f.Foreground(); err != nil {
			p.d.log.Warn("raise a starting warm browser", "pid", b.PID(), "err", err)
		}
	}
}

// readySignal returns a channel closed when the next warm browser for opts is ready,
// or nil when no refill for it is under way.
func (p *pool) readySignal(opts LaunchOptions) <-chan struct{} {
	if p == nil {
		return nil
	}
	key, ok := launchKey(opts)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if sh := p.shelves[key]; sh != nil && sh.launching > 0 {
		return sh.readyC
	}
	return nil
}

// FilesChanged tells the pool that the content behind files.Key changed (a context
// was written back): warm browsers holding an older version are closed, and shelves
// that launch with those files refill with the new ones.
func (p *pool) filesChanged(files LaunchFiles) {
	if p == nil {
		return
	}
	var stale []*warm
	p.mu.Lock()
	for _, sh := range p.shelves {
		i := slices.IndexFunc(sh.template.Files, func(f LaunchFiles) bool { return f.Key == files.Key })
		if i < 0 {
			continue
		}
		opts := sh.template
		opts.Files = slices.Clone(opts.Files)
		opts.Files[i] = files
		stale = append(stale, sh.refresh(opts)...)
	}
	p.mu.Unlock()
	p.closeAll(stale)
	p.wake()
}

// prewarm makes a shelf for opts (when Keyed allows) and has it refilled: a create
// with these options is likely soon (a session wrote its context back).
func (p *pool) prewarm(opts LaunchOptions) {
	if p == nil {
		return
	}
	key, ok := launchKey(opts)
	if !ok {
		return
	}
	p.mu.Lock()
	sh := p.shelves[key]
	if sh == nil && p.cfg.Keyed > 0 && p.ctx.Err() == nil {
		sh = p.newShelf(key, opts)
		p.shelves[key] = sh
	}
	var stale []*warm
	if sh != nil {
		sh.lastUse, sh.drained = time.Now(), false
		stale = sh.refresh(opts)
	}
	p.mu.Unlock()
	p.closeAll(stale)
	p.wake()
}

// filesGone closes the warm browsers made with files named key and forgets their
// shelves (a context or an extension was deleted: its data must not linger).
func (p *pool) filesGone(key string) {
	if p == nil {
		return
	}
	var gone []*warm
	p.mu.Lock()
	for k, sh := range p.shelves {
		if slices.ContainsFunc(sh.template.Files, func(f LaunchFiles) bool { return f.Key == key }) {
			gone = append(gone, sh.ready...)
			sh.ready = nil
			delete(p.shelves, k) // refills in flight see it gone and close their browser
		}
	}
	p.mu.Unlock()
	p.closeAll(gone)
}

func (p *pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// wakeAfter wakes the refill loop now (an emptied shelf refills at once) and when a
// refill deferred by a take may start.
func (p *pool) wakeAfter() {
	time.AfterFunc(refillDelay, p.wake)
	p.wake() // an emptied shelf refills at once
}

// stats returns the pool's current state.
func (p *pool) stats() PoolStats {
	if p == nil {
		return PoolStats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PoolStats{Hits: p.hits.Load(), Misses: p.misses.Load()}
	for _, sh := range p.shelves {
		st.Ready += len(sh.ready)
		st.Launching += sh.launching
		if !sh.plain {
			st.KeyedReady += len(sh.ready)
			st.KeyedLaunching += sh.launching
		}
		if len(sh.ready)+sh.launching > 0 {
			st.Keys++
		}
	}
	return st
}

// prune drops the times older than rateWindow.
func prune(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > rateWindow {
		i++
	}
	return ts[i:]
}

// rateNeed is how many browsers sh needs for the creates the observed rate brings
// while one browser launches (at least 1). Call with p.mu held.
func (p *pool) rateNeed(sh *shelf, now time.Time) int {
	sh.takes = prune(sh.takes, now)
	n := len(sh.takes)
	if n < 2 {
		return 1
	}
	// Takes per second over the last ones, spread over at least rateSpan so that two
	// creates close together do not look like a flood.
	span := max(now.Sub(sh.takes[0]), rateSpan)
	rate := float64(n-1) / span.Seconds()
	return max(1, int(math.Ceil(rateMargin*rate*p.launchDur.Seconds())))
}

// want is how many browsers (ready or launching) sh should have now: enough for the
// creates that the observed rate brings while one browser launches, and at least Size
// for the default key (1 for another one in use). Call with p.mu held.
func (p *pool) want(sh *shelf, now time.Time) int {
	if sh.drained {
		return 0
	}
	if !sh.plain && p.cfg.KeyedIdle > 0 && now.Sub(sh.lastUse) > p.cfg.KeyedIdle {
		return 0
	}
	need := p.rateNeed(sh, now)
	if sh.plain {
		return min(max(need, p.cfg.Size), burstFactor*p.cfg.Size)
	}
	return min(need, p.cfg.Keyed)
}
