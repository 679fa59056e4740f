package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/browserd/browserd/internal/chrome"
)

type benchAPIResult struct {
	rps       []float64 // per round
	lat       benchPct  // ms
	cpuPerReq []float64 // per round: process CPU (server and load generator) per request, µs
	baseRPS   []float64 // per round: the same load on a bare net/http server (baseline)
	conc      int
	dur       time.Duration
}

type benchBurstResult struct {
	getP50, getP99      []float64 // per round, ms: GET /v1/sessions/{id} during the burst
	gets                []int
	create              benchPct  // ms
	seconds             []float64 // per round: first POST to the last 201
	maxStarting         []int     // per round: most browsers starting at once
	size, getters, hits int
}

// benchGetter sends GET /v1/sessions/{id} in a loop on its own connections.
type benchGetter struct {
	client *http.Client
	url    string
	key    string
}

func (s *benchServer) getter(conns int, id string) *benchGetter {
	return &benchGetter{
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
		}},
		url: s.base + "/v1/sessions/" + id,
		key: s.key,
	}
}

// get sends one GET and reads the answer, which must be 200.
func (g *benchGetter) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-BB-API-Key", g.key)
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // read to the end: the connection is reused
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", g.url, resp.StatusCode)
	}
	return err
}

// loop runs n clients that GET until stop is closed (or until deadline, if not zero)
// and returns every latency.
func (g *benchGetter) loop(ctx context.Context, n int, deadline time.Time, stop <-chan struct{}) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			var lat []time.Duration
			var err error
			for {
				if !deadline.IsZero() && time.Now().After(deadline) {
					break
				}
				select {
				case <-stop:
				default:
					t := time.Now()
					if err = g.get(ctx); err == nil {
						lat = append(lat, time.Since(t))
						continue
					}
				}
				break
			}
			mu.Lock()
			all = append(all, lat...)
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	g.client.CloseIdleConnections()
	return all, errors.Join(errs...)
}

// apiPhase measures GET /v1/sessions/{id} of a live session under apiConc concurrent
// clients in this process (they share the 2 cores with the server).
func (r *benchRun) apiPhase(ctx context.Context) error {
	res := &r.api
	res.conc, res.dur = r.cfg.apiConc, r.cfg.apiDur
	s, _, done, err := r.measured(ctx, "api", `{}`)
	if err != nil {
		return err
	}
	defer done()
	if err := r.srv.waitPoolFull(ctx); err != nil { // no refill during the rounds
		return err
	}
	g := r.srv.getter(r.cfg.apiConc, s.ID)
	if _, err := g.loop(ctx, r.cfg.apiConc, time.Now().Add(r.cfg.apiDur/5), nil); err != nil { // warm-up
		return err
	}
	base, err := startBaseGetServer(ctx, g)
	if err != nil {
		return err
	}
	defer base.Close()
	bg := r.srv.getter(r.cfg.apiConc, s.ID) // its own connections, to the baseline server
	bg.url = base.URL + "/v1/sessions/" + s.ID
	for round := range r.cfg.rounds {
		// The baseline first, in the same round: the same clients against a bare
		// net/http server sending the same answer, to show what the machine allows.
		t0 := time.Now()
		blat, err := bg.loop(ctx, r.cfg.apiConc, t0.Add(r.cfg.apiDur), nil)
		if err != nil {
			return fmt.Errorf("baseline GET: %w", err)
		}
		res.baseRPS = append(res.baseRPS, float64(len(blat))/time.Since(t0).Seconds())
		c0, t0 := benchCPU(), time.Now()
		lat, err := g.loop(ctx, r.cfg.apiConc, t0.Add(r.cfg.apiDur), nil)
		if err != nil {
			return err
		}
		elapsed, cpu := time.Since(t0), benchCPU()-c0
		res.rps = append(res.rps, float64(len(lat))/elapsed.Seconds())
		res.lat.add(lat, time.Millisecond)
		res.cpuPerReq = append(res.cpuPerReq, float64(cpu)/1e3/float64(len(lat)))
		r.logf("api round %d: %.0f req/s (bare net/http %.0f), p50 %.2f ms, p99 %.2f ms", round+1, res.rps[round],
			res.baseRPS[round], res.lat.p50[round], res.lat.p99[round])
	}
	return nil
}

// startBaseGetServer captures one answer of g and starts a bare net/http server on
// 127.0.0.1 that sends it (same status, type and body) for every request: the baseline
// of the API throughput.
func startBaseGetServer(ctx context.Context, g *benchGetter) (*httptest.Server, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-BB-API-Key", g.key)
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", g.url, resp.StatusCode)
	}
	ctype := resp.Header.Get("Content-Type")
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(body)
	})), nil
}

// burstPhase sends burst creates at once while burstGetters clients poll GET
// /v1/sessions/{id} of another live session, and counts the browsers starting at once.
func (r *benchRun) burstPhase(ctx context.Context) error {
	res := &r.burst
	res.size, res.getters = r.cfg.burst, r.cfg.burstGetters
	for round := range r.cfg.heavyRounds {
		if err := r.srv.waitPoolFull(ctx); err != nil {
			return err
		}
		probe, _, err := r.srv.create(ctx, `{}`)
		if err != nil {
			return err
		}
		ids := []string{probe.ID}
		if err := r.srv.waitPoolFull(ctx); err != nil {
			return err
		}
		before, err := r.srv.poolStats(ctx)
		if err != nil {
			return err
		}
		stop := make(chan struct{})
		launching := r.srv.watchLaunches(stop)
		type getResult struct {
			lat []time.Duration
			err error
		}
		gets := make(chan getResult, 1)
		g := r.srv.getter(r.cfg.burstGetters, probe.ID)
		go func() { // ends when stop is closed; its result is read below
			lat, err := g.loop(ctx, r.cfg.burstGetters, time.Time{}, stop)
			gets <- getResult{lat, err}
		}()
		time.Sleep(50 * time.Millisecond) // the getters are polling before the burst starts
		var (
			mu      sync.Mutex
			creates []time.Duration
			errs    []error
			wg      sync.WaitGroup
		)
		t0 := time.Now()
		for range r.cfg.burst {
			wg.Go(func() {
				s, d, err := r.srv.create(ctx, `{}`)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				creates = append(creates, d)
				ids = append(ids, s.ID)
			})
		}
		wg.Wait()
		burstTime := time.Since(t0)
		close(stop)
		gr := <-gets
		maxStarting := <-launching
		after, err := r.srv.poolStats(ctx)
		res.hits += int(after.hits - before.hits)
		if err := errors.Join(append(errs, err, gr.err, r.releaseAll(ctx, ids))...); err != nil {
			return err
		}
		res.create.add(creates, time.Millisecond)
		res.getP50 = append(res.getP50, benchPercentile(gr.lat, 0.5, time.Millisecond))
		res.getP99 = append(res.getP99, benchPercentile(gr.lat, 0.99, time.Millisecond))
		res.gets = append(res.gets, len(gr.lat))
		res.seconds = append(res.seconds, burstTime.Seconds())
		res.maxStarting = append(res.maxStarting, maxStarting)
		r.logf("burst round %d: %d creates in %.1f s, GET p99 %.1f ms over %d requests, at most %d launching",
			round+1, r.cfg.burst, burstTime.Seconds(), res.getP99[round], len(gr.lat), res.maxStarting[round])
	}
	return nil
}

// releaseAll releases sessions and waits until their browsers are gone.
func (r *benchRun) releaseAll(ctx context.Context, ids []string) error {
	var pids []int
	var errs []error
	for _, id := range ids {
		pid, err := r.srv.pid(ctx, id)
		if err == nil {
			pids = append(pids, pid)
			err = r.srv.release(ctx, id)
		}
		errs = append(errs, err)
	}
	for _, pid := range pids {
		errs = append(errs, chrome.WaitGroupGone(ctx, pid))
	}
	return errors.Join(errs...)
}
