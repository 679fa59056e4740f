package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/client"
	"github.com/browserd/browserd/internal/server"
)

// benchServerConfig configures the server of the bench.
type benchServerConfig struct {
	dataDir     string
	chromePath  string
	poolSize    int
	maxLaunches int
	maxSessions int
	extraArgs   []string  // more `browserd serve` flags
	log         io.Writer // the server's warnings and errors
	version     string    // this build's, for the server
	key         string    // the API key; "" for a random one (a cluster's nodes share one)
}

// benchServer is `browserd serve` itself (server.Main, with its production wiring and
// defaults) running in this process. The bench reads the warm pool's state from
// /metrics and the browsers' process ids from the server's store (server.Main.DB).
type benchServer struct {
	main      *server.Main
	closeOnce sync.Once
	closeErr  error
	args      []string
	base      string // http://127.0.0.1:port
	key       string
	metrics   string // the metrics token
	projectID string
	poolSize  int
	runDir    string
	client    *http.Client   // pooled; the API client and the load generator share it
	api       *client.Client // the typed /v1 client
}

func startBenchServer(ctx context.Context, cfg benchServerConfig) (_ *benchServer, err error) {
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, err
	}
	s := &benchServer{poolSize: cfg.poolSize, key: cmp.Or(cfg.key, "bb_bench_"+benchRandomHex(16)), metrics: benchRandomHex(16),
		runDir: filepath.Join(cfg.dataDir, "run")}
	s.args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", cfg.dataDir, "--api-key", s.key, "--metrics-token", s.metrics,
		"--chrome", cfg.chromePath, "--pool-size", strconv.Itoa(cfg.poolSize),
		"--max-launches", strconv.Itoa(cfg.maxLaunches), "--max-sessions", strconv.Itoa(cfg.maxSessions),
		"--log-format", "text", "--log-level", "info",
		"--allow-private-networks"}, cfg.extraArgs...) // the bench's pages are on loopback
	m := server.NewMain(cfg.version)
	m.Stdout, m.Stderr = io.Discard, &benchLogFilter{w: cfg.log}
	noEnv := func(string) string { return "" } // the caller's BROWSERD_* must not change the server
	if err := m.ParseFlags(s.args, noEnv); err != nil {
		return nil, fmt.Errorf("browserd serve %s: %w", strings.Join(s.args, " "), err)
	}
	// Open ends what it opened when it fails; once it succeeded, close does.
	if err := m.Open(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("browserd serve %s: %w", strings.Join(s.args, " "), err)
	}
	s.main, s.base, s.projectID = m, m.URL, m.Project.ID
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	// The default project's concurrency is raised, so that it allows every live session
	// the bench creates.
	if _, err := m.DB.UpdateProject(ctx, s.projectID, func(p *bb.Project) error {
		p.Concurrency = max(p.Concurrency, cfg.maxSessions)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("raise project concurrency: %w", err)
	}
	// Creates queue for a launch slot by design: a burst's last one waits for all others.
	s.client = &http.Client{Timeout: 15 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
	}}
	if s.api, err = client.New(client.Config{BaseURL: s.base, APIKey: s.key, HTTPClient: s.client,
		UserAgent: "browserd-bench/" + cfg.version}); err != nil {
		return nil, err
	}
	return s, nil
}

// displayArgs returns serve's flags with the API key, the database and temporary paths
// left out.
func (s *benchServer) displayArgs() string {
	out := make([]string, 0, len(s.args))
	for i, a := range s.args {
		switch {
		case i > 0 && (s.args[i-1] == "--api-key" || s.args[i-1] == "--metrics-token"):
			a = "<random>"
		case i > 0 && (s.args[i-1] == "--data-dir" || s.args[i-1] == "--chrome"):
			a = "<" + strings.TrimPrefix(s.args[i-1], "--") + ">"
		case i > 0 && s.args[i-1] == "--database": // a PostgreSQL URL holds a password
			a = "<database>"
		case strings.HasPrefix(a, "--database="):
			a = "--database=<database>"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// close shuts the server down (it ends every session).
func (s *benchServer) close() error {
	s.closeOnce.Do(func() {
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		s.closeErr = s.main.Close()
	})
	return s.closeErr
}

// benchLogFilter is serve's stderr: records are formatted as in production (text, info)
// but only warnings and errors are written, to the bench's log.
type benchLogFilter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *benchLogFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(" level=INFO ")) || bytes.Contains(p, []byte(" level=DEBUG ")) {
		return len(p), nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

// create sends POST /v1/sessions and returns the session and the time to the 201.
func (s *benchServer) create(ctx context.Context, body string) (client.Session, time.Duration, error) {
	start := time.Now()
	sess, err := s.api.CreateSession(ctx, json.RawMessage(body))
	d := time.Since(start)
	if err != nil {
		return client.Session{}, d, err
	}
	if sess.ID == "" || sess.ConnectURL == "" || sess.Status != "RUNNING" {
		err = fmt.Errorf("create answered %+v", *sess)
	}
	return *sess, d, err
}

// release sends REQUEST_RELEASE.
func (s *benchServer) release(ctx context.Context, id string) error {
	_, err := s.api.ReleaseSession(ctx, id)
	return err
}

// pid returns the main process id of a session's browser, from the store.
func (s *benchServer) pid(ctx context.Context, id string) (int, error) {
	sess, err := s.main.DB.Session(ctx, id)
	if err != nil {
		return 0, err
	}
	if sess.PID <= 0 {
		return 0, fmt.Errorf("session %s has no browser pid", id)
	}
	return sess.PID, nil
}

// releaseAndWait releases a session and waits until its browser's processes are gone,
// so that the next measurement does not share the CPU with its shutdown.
func (s *benchServer) releaseAndWait(ctx context.Context, id string, pid int) error {
	if err := s.release(ctx, id); err != nil {
		return err
	}
	return chrome.WaitGroupGone(ctx, pid)
}

// measured creates a session (create body body) for a phase to measure on, once the pool
// is full, and returns it with its browser's pid and a function that releases it and waits until
// its browser is gone (logging a failure as what's).
func (r *benchRun) measured(ctx context.Context, what, body string) (client.Session, int, func(), error) {
	if err := r.srv.waitPoolFull(ctx); err != nil {
		return client.Session{}, 0, nil, err
	}
	s, _, err := r.srv.create(ctx, body)
	if err != nil {
		return client.Session{}, 0, nil, err
	}
	pid, err := r.srv.pid(ctx, s.ID)
	if err != nil {
		return client.Session{}, 0, nil, errors.Join(err, r.srv.release(context.WithoutCancel(ctx), s.ID))
	}
	done := func() {
		if rerr := r.srv.releaseAndWait(context.WithoutCancel(ctx), s.ID, pid); rerr != nil {
			r.logf("release %s session: %v", what, rerr)
		}
	}
	return s, pid, done, nil
}

// benchPoolStats is the warm pool as /metrics shows it.
type benchPoolStats struct{ ready, launching, hits, misses int64 }

// poolStats scrapes /metrics with the metrics token.
func (s *benchServer) poolStats(ctx context.Context) (benchPoolStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return benchPoolStats{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.metrics)
	resp, err := s.client.Do(req)
	if err != nil {
		return benchPoolStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return benchPoolStats{}, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return benchParsePoolMetrics(resp.Body)
}

// benchParsePoolMetrics reads the warm pool's series of the Prometheus text format.
func benchParsePoolMetrics(r io.Reader) (benchPoolStats, error) {
	var st benchPoolStats
	found := 0
	series := map[string]*int64{
		`browserd_pool_browsers{shelf="default",state="ready"}`:     &st.ready,
		`browserd_pool_browsers{shelf="default",state="launching"}`: &st.launching,
		`browserd_pool_takes_total{result="hit"}`:                   &st.hits,
		`browserd_pool_takes_total{result="miss"}`:                  &st.misses,
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		p := series[name]
		if !ok || p == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 || v > 1<<53 {
			return st, fmt.Errorf("metrics: bad value in %q", sc.Text())
		}
		*p = int64(v)
		found++
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if found != len(series) {
		return st, fmt.Errorf("metrics: found %d of the %d warm pool series", found, len(series))
	}
	return st, nil
}

// waitPoolFull waits until the warm pool holds poolSize ready browsers and launches
// nothing, so that a create finds it full and no refill competes for the CPU.
func (s *benchServer) waitPoolFull(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		st, err := s.poolStats(ctx)
		if err == nil && st.ready >= int64(s.poolSize) && st.launching == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("warm pool not full (%+v, %v): %w", st, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startingBrowsers counts the browsers in the server's run dir that have not yet
// opened their DevTools socket: the launches in progress.
func (s *benchServer) startingBrowsers() int {
	entries, err := os.ReadDir(s.runDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		dir := filepath.Join(s.runDir, e.Name(), "profile")
		if _, err := os.Stat(dir); err != nil {
			continue // not a browser directory (or removed meanwhile)
		}
		if _, err := os.Stat(filepath.Join(dir, "DevToolsActivePort")); errors.Is(err, os.ErrNotExist) {
			n++
		}
	}
	return n
}

// watchLaunches samples startingBrowsers until stop is closed and returns the most.
func (s *benchServer) watchLaunches(stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() { // ends when stop is closed; the caller reads out
		top := 0
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			top = max(top, s.startingBrowsers())
			select {
			case <-stop:
				out <- top
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func benchRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand aborts instead)
	return hex.EncodeToString(b)
}
