package browserd

import (
	"context"
	"slices"
	"time"
)

// run keeps the shelves filled until the owner closes, then closes the warm browsers.
func (p *pool) run() {
	defer p.drainAll()
	every := tick
	if p.cfg.IdleExpiry > 0 && p.cfg.IdleExpiry/4 < every {
		every = p.cfg.IdleExpiry / 4
	}
	if p.cfg.KeyedIdle > 0 && p.cfg.KeyedIdle/4 < every {
		every = p.cfg.KeyedIdle / 4
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.fill()
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
			p.trim(time.Now())
		}
	}
}

// fill starts refills until every shelf has what it wants, within the memory budget
// and Keyed. A launch slot is taken only when no cold create waits, so refills never
// delay a create.
func (p *pool) fill() {
	for p.coldWaiting.Load() == 0 {
		sh, opts, version := p.next(time.Now())
		if sh == nil {
			return
		}
		select {
		case p.d.slots <- struct{}{}:
		case <-p.ctx.Done():
			p.doneLaunching(sh)
			return
		}
		if p.coldWaiting.Load() > 0 { // a create came while we waited: let it go first
			<-p.d.slots
			p.doneLaunching(sh)
			return
		}
		p.d.wg.Go(func() { p.launchOne(sh, opts, version) })
	}
}

// next picks the shelf to refill now and counts its launch: the default key first,
// then the others, most recently used first. A shelf that still has as many ready
// browsers as the create rate needs waits refillDelay after its last take, so that its
// refill does not compete with the session it just served.
func (p *pool) next(now time.Time) (*shelf, LaunchOptions, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return nil, LaunchOptions{}, ""
	}
	total, keyed := 0, 0
	for _, sh := range p.shelves {
		n := len(sh.ready) + sh.launching
		total += n
		if !sh.plain {
			keyed += n
		}
	}
	if p.cfg.MaxMemory > 0 && int64(total+1)*p.perBrowser > p.cfg.MaxMemory {
		return nil, LaunchOptions{}, ""
	}
	order := make([]*shelf, 0, len(p.shelves))
	for _, sh := range p.shelves {
		order = append(order, sh)
	}
	slices.SortFunc(order, func(a, b *shelf) int {
		if a.plain != b.plain {
			if a.plain {
				return -1
			}
			return 1
		}
		return b.lastUse.Compare(a.lastUse)
	})
	for _, sh := range order {
		if len(sh.ready)+sh.launching >= p.want(sh, now) {
			continue
		}
		if !sh.plain && keyed >= p.cfg.Keyed {
			continue
		}
		if len(sh.ready) > 0 && len(sh.ready) >= p.rateNeed(sh, now) &&
			len(sh.takes) > 0 && now.Sub(sh.takes[len(sh.takes)-1]) < refillDelay {
			// Enough ready for the rate: the refill waits until the session just handed
			// out is past its first navigation (wakeAfter wakes the loop then). Below
			// that, creates would run dry: refill at once, in the background.
			continue
		}
		sh.launching++
		return sh, sh.template, sh.version
	}
	return nil, LaunchOptions{}, ""
}

// doneLaunching ends a refill that launched nothing; creates waiting for it go on.
func (p *pool) doneLaunching(sh *shelf) {
	p.mu.Lock()
	sh.launching--
	close(sh.readyC)
	sh.readyC = make(chan struct{})
	p.mu.Unlock()
}

// launchOne launches one warm browser for sh in the background, holding the launch
// slot fill took, and shelves it unless the shelf moved on meanwhile (a newer version
// of its files, expiry, close).
func (p *pool) launchOne(sh *shelf, opts LaunchOptions, version string) {
	opts.SessionID = "warm-" + NewID()
	opts.Background = true
	start := time.Now()
	b, err := p.d.launch(p.ctx, opts, func(b Browser) {
		p.mu.Lock()
		sh.starting = append(sh.starting, b)
		hurry := sh.hurried
		p.mu.Unlock()
		if hurry { // a create already waits for this shelf
			p.foreground(b)
		}
	})
	p.mu.Lock()
	sh.starting = slices.DeleteFunc(sh.starting, func(s Browser) bool { return s == b })
	if sh.launching == 1 {
		sh.hurried = false // the last refill under way ends: creates no longer wait on one
	}
	p.mu.Unlock()
	if err != nil {
		<-p.d.slots
		p.doneLaunching(sh)
		if p.ctx.Err() == nil {
			// Do not spin on a broken launcher: the next take or tick retries.
			p.d.log.Warn("warm pool launch failed", "err", err)
		}
		return
	}
	took := time.Since(start)
	var pss int64
	if mr, ok := b.(MemoryReporter); ok {
		if n, err := mr.Memory(); err == nil && n > 0 {
			pss = n
		}
	}
	w := &warm{b: b, version: version, taken: make(chan struct{})}
	p.mu.Lock()
	sh.launching--
	keep := p.ctx.Err() == nil && p.shelves[sh.key] == sh && sh.version == version && !sh.drained
	if keep {
		sh.ready = append(sh.ready, w)
	}
	close(sh.readyC) // creates waiting for this refill take it, or go on without it
	sh.readyC = make(chan struct{})
	p.launchDur = (p.launchDur + took) / 2 // running estimates for the rate and the budget
	if pss > 0 {
		p.perBrowser = (p.perBrowser + pss) / 2
	}
	p.mu.Unlock()
	if !keep {
		<-p.d.slots
		p.closeBrowser(b)
		p.wake()
		return
	}
	p.d.wg.Go(func() { p.watch(sh, w) })
	<-p.d.slots // after the signal: a waiting create takes this browser, not a slot
	p.wake()
}

// watch removes a warm browser that exits before it is taken.
func (p *pool) watch(sh *shelf, w *warm) {
	select {
	case <-w.taken:
		return
	case <-w.b.Exited():
	case <-p.ctx.Done():
		return // drainAll closes it
	}
	p.mu.Lock()
	i := slices.Index(sh.ready, w)
	if i >= 0 {
		sh.ready = slices.Delete(sh.ready, i, i+1)
	}
	p.mu.Unlock()
	if i < 0 {
		return // taken or dropped at the same moment: no longer ours
	}
	p.d.log.Warn("warm browser exited while waiting; replacing it", "pid", w.b.PID())
	p.closeBrowser(w.b)
	p.wake()
}

// trim closes the browsers beyond what each shelf wants now (a burst ended, a key went
// idle) and empties the default shelf after IdleExpiry without a take.
func (p *pool) trim(now time.Time) {
	var drop []*warm
	p.mu.Lock()
	for k, sh := range p.shelves {
		idle := p.cfg.IdleExpiry
		if !sh.plain && p.cfg.KeyedIdle > 0 {
			idle = p.cfg.KeyedIdle
		}
		if idle > 0 && now.Sub(sh.lastUse) >= idle && !sh.drained {
			if sh.plain {
				sh.drained = true
				p.d.log.Info("warm pool idle; emptying it", "idle_expiry", idle)
			} else {
				drop = append(drop, sh.ready...)
				sh.ready = nil
				if sh.launching == 0 {
					delete(p.shelves, k)
				} else {
					sh.drained = true // its refills in flight are closed
				}
				continue
			}
		}
		excess := len(sh.ready) + sh.launching - p.want(sh, now)
		for ; excess > 0 && len(sh.ready) > 0; excess-- {
			drop = append(drop, sh.ready[0]) // the oldest
			sh.ready = sh.ready[1:]
		}
		if !sh.plain && len(sh.ready) == 0 && sh.launching == 0 && p.want(sh, now) == 0 {
			delete(p.shelves, k)
		}
	}
	p.mu.Unlock()
	p.closeAll(drop)
}

// drainAll closes every warm browser that is waiting.
func (p *pool) drainAll() {
	var all []*warm
	p.mu.Lock()
	for _, sh := range p.shelves {
		all = append(all, sh.ready...)
		sh.ready = nil
	}
	p.mu.Unlock()
	for _, w := range all {
		close(w.taken)
		p.closeBrowser(w.b)
	}
}

// closeAll closes browsers the pool dropped, in the background.
func (p *pool) closeAll(ws []*warm) {
	for _, w := range ws {
		close(w.taken)
		p.d.wg.Go(func() { p.closeBrowser(w.b) })
	}
}

func (p *pool) closeBrowser(b Browser) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.d.ctx), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		p.d.log.Warn("close warm browser", "pid", b.PID(), "err", err)
	}
}
