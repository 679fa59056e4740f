package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/browserd/browserd/internal/chrome"
)

// benchColdBody asks for a viewport the warm pool has no browser for, so the create
// launches a browser while it waits: a cold create, with the pool still on. Each n gives
// another viewport, as the pool keeps browsers for viewports creates asked for lately.
func benchColdBody(n int) string {
	return fmt.Sprintf(`{"browserSettings":{"viewport":{"width":%d,"height":721}}}`, 1281+n%500)
}

// benchPct holds per-round percentiles of a latency, in ms (or µs where noted).
type benchPct struct{ p50, p90, p99 []float64 }

func (p *benchPct) add(samples []time.Duration, unit time.Duration) {
	p.p50 = append(p.p50, benchPercentile(samples, 0.50, unit))
	p.p90 = append(p.p90, benchPercentile(samples, 0.90, unit))
	p.p99 = append(p.p99, benchPercentile(samples, 0.99, unit))
}

type benchCreateResult struct {
	warm, cold   benchPct
	hits, misses int64
	perRound     int
}

// createPhase measures POST /v1/sessions → 201, warm (taken from the full pool) and
// cold (a launch options miss), interleaved. Every session is released and its browser
// gone, and the pool full again, before the next create.
func (r *benchRun) createPhase(ctx context.Context) error {
	res := &r.create
	res.perRound = r.cfg.createN
	before, err := r.srv.poolStats(ctx)
	if err != nil {
		return err
	}
	for round := range r.cfg.rounds {
		var warm, cold []time.Duration
		for i := range r.cfg.createN {
			coldBody := benchColdBody(round*r.cfg.createN + i)
			for _, body := range []string{`{}`, coldBody} {
				if err := r.srv.waitPoolFull(ctx); err != nil {
					return err
				}
				s, d, err := r.srv.create(ctx, body)
				if err != nil {
					return err
				}
				if body == coldBody {
					cold = append(cold, d)
				} else {
					warm = append(warm, d)
				}
				pid, err := r.srv.pid(ctx, s.ID)
				if err != nil {
					return err
				}
				if err := r.srv.releaseAndWait(ctx, s.ID, pid); err != nil {
					return err
				}
			}
		}
		res.warm.add(warm, time.Millisecond)
		res.cold.add(cold, time.Millisecond)
		r.logf("create round %d: warm p50 %.1f ms, cold p50 %.1f ms", round+1,
			benchPercentile(warm, 0.5, time.Millisecond), benchPercentile(cold, 0.5, time.Millisecond))
	}
	after, err := r.srv.poolStats(ctx)
	res.hits, res.misses = after.hits-before.hits, after.misses-before.misses
	return err
}

// benchSteps are the timed steps of one lifecycle.
type benchSteps struct{ start, connect, navigate, end, total time.Duration }

type benchLifecycleResult struct {
	browserd, bare benchPct
	ratio          []float64 // per round: browserd p50 / bare p50
	stepsBD        []benchSteps
	stepsBare      []benchSteps
	perRound       int
}

// lifecyclePhase times create → CDP connect (attach to the page, Page.enable) →
// navigate to a local page (load event) → release, through browserd with a full pool,
// and the same steps on bare Chromium (launch → connect → navigate → SIGKILL),
// interleaved.
func (r *benchRun) lifecyclePhase(ctx context.Context) error {
	res := &r.lifecycle
	res.perRound = r.cfg.lifecycleN
	for round := range r.cfg.rounds {
		var bd, bare []time.Duration
		for range r.cfg.lifecycleN {
			if err := r.srv.waitPoolFull(ctx); err != nil {
				return err
			}
			st, err := r.browserdLifecycle(ctx)
			if err != nil {
				return fmt.Errorf("browserd lifecycle: %w", err)
			}
			bd = append(bd, st.total)
			res.stepsBD = append(res.stepsBD, st)
			if st, err = r.bareLifecycle(ctx); err != nil {
				return fmt.Errorf("bare lifecycle: %w", err)
			}
			bare = append(bare, st.total)
			res.stepsBare = append(res.stepsBare, st)
		}
		res.browserd.add(bd, time.Millisecond)
		res.bare.add(bare, time.Millisecond)
		bp50, barep50 := benchPercentile(bd, 0.5, time.Millisecond), benchPercentile(bare, 0.5, time.Millisecond)
		res.ratio = append(res.ratio, bp50/barep50)
		r.logf("lifecycle round %d: browserd p50 %.1f ms, bare p50 %.1f ms", round+1, bp50, barep50)
	}
	return nil
}

func (r *benchRun) browserdLifecycle(ctx context.Context) (benchSteps, error) {
	var st benchSteps
	t0 := time.Now()
	s, _, err := r.srv.create(ctx, `{}`)
	if err != nil {
		return st, err
	}
	t1 := time.Now()
	c, err := benchDial(ctx, s.ConnectURL)
	if err != nil {
		return st, errors.Join(err, r.srv.release(ctx, s.ID))
	}
	defer c.close()
	sid, err := c.attachPage(ctx)
	if err != nil {
		return st, errors.Join(err, r.srv.release(ctx, s.ID))
	}
	t2 := time.Now()
	if err := c.navigate(ctx, sid, r.pages.small()); err != nil {
		return st, errors.Join(err, r.srv.release(ctx, s.ID))
	}
	t3 := time.Now()
	if err := r.srv.release(ctx, s.ID); err != nil {
		return st, err
	}
	t4 := time.Now()
	st = benchSteps{start: t1.Sub(t0), connect: t2.Sub(t1), navigate: t3.Sub(t2), end: t4.Sub(t3), total: t4.Sub(t0)}
	pid, err := r.srv.pid(ctx, s.ID)
	if err != nil {
		return st, err
	}
	return st, chrome.WaitGroupGone(ctx, pid)
}

func (r *benchRun) bareLifecycle(ctx context.Context) (st benchSteps, err error) {
	t0 := time.Now()
	b, err := r.bare.launch(ctx)
	if err != nil {
		return st, err
	}
	defer func() { err = errors.Join(err, r.bare.stop(context.WithoutCancel(ctx), b)) }()
	t1 := time.Now()
	c, err := benchDial(ctx, b.wsURL)
	if err != nil {
		return st, err
	}
	defer c.close()
	sid, err := c.attachPage(ctx)
	if err != nil {
		return st, err
	}
	t2 := time.Now()
	if err := c.navigate(ctx, sid, r.pages.small()); err != nil {
		return st, err
	}
	t3 := time.Now()
	if err := b.kill(); err != nil {
		return st, err
	}
	t4 := time.Now()
	return benchSteps{start: t1.Sub(t0), connect: t2.Sub(t1), navigate: t3.Sub(t2), end: t4.Sub(t3), total: t4.Sub(t0)}, nil
}
