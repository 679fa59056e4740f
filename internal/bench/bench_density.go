package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type benchDensityLevel struct {
	n                int
	healthy          bool
	why              string  // when not healthy
	pssPer, pssAll   float64 // MiB per session: session browsers only; whole process tree
	memAvailMiB      float64
	evalP50, evalP99 float64 // ms, Runtime.evaluate through the gateway, one per session
	addSeconds       float64 // time to start the sessions added at this level
}

type benchDensityResult struct {
	n                      int
	levels                 []benchDensityLevel
	largest                int
	stop                   string
	pssBare                float64 // MiB per bare browser at n
	memDropBD, memDropBare float64 // MiB per session: MemAvailable drop
	bareSeconds            float64
	settle                 time.Duration
	max, step              int
}

// benchDensitySession is an idle session of the density phase.
type benchDensitySession struct {
	id, connectURL string
	pid            int
}

// densityPhase starts cfg.density idle sessions (each with the small page loaded),
// measures their memory and health, optionally adds more while they stay healthy,
// releases them, and then measures as many bare browsers the same way.
func (r *benchRun) densityPhase(ctx context.Context) error {
	res := &r.density
	res.n, res.settle, res.max, res.step = r.cfg.density, r.cfg.settle, r.cfg.densityMax, r.cfg.densityStep
	if err := r.srv.waitPoolFull(ctx); err != nil {
		return err
	}
	mem0 := benchMemAvailable()
	var sessions []benchDensitySession
	defer func() {
		ids := make([]string, len(sessions))
		for i, s := range sessions {
			ids[i] = s.id
		}
		if err := r.releaseAll(context.WithoutCancel(ctx), ids); err != nil {
			r.logf("release density sessions: %v", err)
		}
	}()
	target := r.cfg.density
	for {
		t0 := time.Now()
		added, err := r.addDensitySessions(ctx, target-len(sessions))
		sessions = append(sessions, added...)
		lvl := benchDensityLevel{n: len(sessions), addSeconds: time.Since(t0).Seconds()}
		if err != nil {
			lvl.why = "create: " + err.Error()
		} else {
			r.measureDensity(ctx, sessions, &lvl)
		}
		res.levels = append(res.levels, lvl)
		r.logf("density %d: healthy %v %s; %.0f MiB/session (%.0f with server and pool), MemAvailable %.0f MiB",
			lvl.n, lvl.healthy, lvl.why, lvl.pssPer, lvl.pssAll, lvl.memAvailMiB)
		if lvl.healthy {
			res.largest = lvl.n
		}
		if lvl.n == r.cfg.density {
			res.memDropBD = (mem0 - lvl.memAvailMiB) / float64(lvl.n)
		}
		if !lvl.healthy {
			res.stop = "unhealthy at " + strconv.Itoa(lvl.n) + ": " + lvl.why
			break
		}
		if len(sessions) >= r.cfg.densityMax {
			res.stop = "reached --density-max"
			if r.cfg.densityMax == 0 {
				res.stop = "no ramp (--density-max 0)"
			}
			break
		}
		next := min(len(sessions)+r.cfg.densityStep, r.cfg.densityMax)
		// Leave room: a browser costs about 160 MiB of MemAvailable (research §3b).
		if free := benchMemAvailable() - float64(next-len(sessions))*160; free < float64(r.cfg.minFreeMiB) {
			res.stop = fmt.Sprintf("stopped before %d: MemAvailable would fall below %d MiB", next, r.cfg.minFreeMiB)
			break
		}
		target = next
	}
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.id
	}
	sessions = nil
	if err := r.releaseAll(ctx, ids); err != nil {
		return err
	}
	if len(res.levels) == 0 || !res.levels[0].healthy {
		return fmt.Errorf("density %d not healthy: %s", r.cfg.density, res.stop)
	}
	return r.bareDensity(ctx)
}

// addDensitySessions creates n idle sessions, as many at once as the server launches,
// and loads the small page in each through the gateway.
func (r *benchRun) addDensitySessions(ctx context.Context, n int) ([]benchDensitySession, error) {
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var (
		mu   sync.Mutex
		out  []benchDensitySession
		errs []error
		wg   sync.WaitGroup
	)
	for range r.cfg.maxLaunches + 2 {
		wg.Go(func() {
			for range jobs {
				s, err := r.startIdleSession(ctx)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out = append(out, s)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (r *benchRun) startIdleSession(ctx context.Context) (benchDensitySession, error) {
	s, _, err := r.srv.create(ctx, `{"keepAlive":true,"timeout":21600}`)
	if err != nil {
		return benchDensitySession{}, err
	}
	ds := benchDensitySession{id: s.ID, connectURL: s.ConnectURL}
	if ds.pid, err = r.srv.pid(ctx, s.ID); err != nil {
		return ds, err
	}
	c, err := benchDial(ctx, s.ConnectURL)
	if err != nil {
		return ds, err
	}
	defer c.close() // keepAlive: the session stays after the client leaves
	sid, err := c.attachPage(ctx)
	if err != nil {
		return ds, err
	}
	return ds, c.navigate(ctx, sid, r.pages.small())
}

// measureDensity lets the browsers settle, measures memory, and checks that every
// session is RUNNING and answers Runtime.evaluate through the gateway.
func (r *benchRun) measureDensity(ctx context.Context, sessions []benchDensitySession, lvl *benchDensityLevel) {
	if err := r.srv.waitPoolFull(ctx); err != nil {
		lvl.why = err.Error()
		return
	}
	time.Sleep(r.cfg.settle)
	pgids := map[int]bool{}
	for _, s := range sessions {
		pgids[s.pid] = true
	}
	procs := benchProcs()
	lvl.pssPer = benchMiB(benchPSS(procs, func(p benchProc) bool { return pgids[p.pgrp] })) / float64(len(sessions))
	tree := procs.descendants(os.Getpid())
	lvl.pssAll = benchMiB(benchPSS(procs, func(p benchProc) bool { return tree[p.pid] })) / float64(len(sessions))
	lvl.memAvailMiB = benchMemAvailable()

	var evals []time.Duration
	var errs []error
	for _, s := range sessions {
		d, err := r.checkSession(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", s.id, err))
			continue
		}
		evals = append(evals, d)
	}
	if len(evals) > 0 {
		lvl.evalP50 = benchPercentile(evals, 0.5, time.Millisecond)
		lvl.evalP99 = benchPercentile(evals, 0.99, time.Millisecond)
	}
	switch {
	case len(errs) > 0:
		lvl.why = fmt.Sprintf("%d of %d sessions failed the check; first: %v", len(errs), len(sessions), errs[0])
	case lvl.memAvailMiB < float64(r.cfg.minFreeMiB):
		lvl.why = fmt.Sprintf("MemAvailable %.0f MiB < %d MiB", lvl.memAvailMiB, r.cfg.minFreeMiB)
	default:
		lvl.healthy = true
	}
}

// checkSession checks that a session is RUNNING and its page answers through the
// gateway, and returns the time of one Runtime.evaluate.
func (r *benchRun) checkSession(ctx context.Context, s benchDensitySession) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := r.srv.api.Session(ctx, s.id)
	if err != nil {
		return 0, err
	}
	if got.Status != "RUNNING" {
		return 0, fmt.Errorf("status %s", got.Status)
	}
	c, err := benchDial(ctx, s.connectURL)
	if err != nil {
		return 0, err
	}
	defer c.close()
	sid, err := c.attachPage(ctx)
	if err != nil {
		return 0, err
	}
	t := time.Now()
	msg, err := c.callRaw(ctx, sid, "Runtime.evaluate", []byte(`{"expression":"document.title"}`))
	d := time.Since(t)
	if err == nil && !strings.Contains(string(msg), `"value":"bench"`) {
		err = fmt.Errorf("page title: %.200s", msg)
	}
	return d, err
}

// bareDensity starts as many bare browsers as the base density level had (at most
// max-launches at once, like the server), loads the small page, and measures them.
func (r *benchRun) bareDensity(ctx context.Context) error {
	res := &r.density
	mem0 := benchMemAvailable()
	var (
		mu       sync.Mutex
		browsers []*benchBareBrowser
		errs     []error
		wg       sync.WaitGroup
	)
	defer func() {
		for _, b := range browsers {
			if err := r.bare.stop(context.WithoutCancel(ctx), b); err != nil {
				r.logf("stop bare browser: %v", err)
			}
		}
	}()
	jobs := make(chan struct{}, res.n)
	for range res.n {
		jobs <- struct{}{}
	}
	close(jobs)
	slots := make(chan struct{}, r.cfg.maxLaunches)
	t0 := time.Now()
	for range r.cfg.maxLaunches + 2 {
		wg.Go(func() {
			for range jobs {
				slots <- struct{}{}
				b, err := r.bare.launch(ctx)
				if b != nil {
					mu.Lock()
					browsers = append(browsers, b)
					mu.Unlock()
				}
				if err == nil {
					err = r.bareIdle(ctx, b)
				}
				<-slots
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	res.bareSeconds = time.Since(t0).Seconds()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	time.Sleep(r.cfg.settle)
	pgids := map[int]bool{}
	for _, b := range browsers {
		pgids[b.pgid] = true
	}
	res.pssBare = benchMiB(benchPSS(benchProcs(), func(p benchProc) bool { return pgids[p.pgrp] })) / float64(len(browsers))
	res.memDropBare = (mem0 - benchMemAvailable()) / float64(len(browsers))
	r.logf("bare density %d: %.0f MiB/browser", len(browsers), res.pssBare)
	return nil
}

// bareIdle waits until a bare browser is ready (its first CDP answer after the
// DevTools line) and loads the small page, as the sessions have.
func (r *benchRun) bareIdle(ctx context.Context, b *benchBareBrowser) error {
	c, err := benchDial(ctx, b.wsURL)
	if err != nil {
		return err
	}
	defer c.close()
	sid, err := c.attachPage(ctx)
	if err != nil {
		return err
	}
	return c.navigate(ctx, sid, r.pages.small())
}
