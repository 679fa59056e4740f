package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdpproxy"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/sqlite"
)

// benchServerConfig configures the in-process server of the bench.
type benchServerConfig struct {
	dataDir     string
	chromePath  string
	poolSize    int
	maxLaunches int
	maxSessions int
	log         io.Writer // warnings and errors of the server
}

// benchServer is a browserd wired like `browserd serve` (serve.go), in this process, so
// that the bench can see the Manager's pool and count launches.
type benchServer struct {
	db        *sqlite.DB
	mgr       *bb.Manager
	gw        *cdpproxy.Gateway
	srv       *http.Server
	serveDone chan error
	base      string // http://127.0.0.1:port
	key       string
	projectID string
	poolSize  int
	launches  *benchLauncher
	client    *http.Client
}

func startBenchServer(ctx context.Context, cfg benchServerConfig) (_ *benchServer, err error) {
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, err
	}
	// The production defaults (text, info), formatted as in production but thrown away,
	// and warnings and errors on the bench's log, which explain a failed measurement.
	logger := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(cfg.log, &slog.HandlerOptions{Level: slog.LevelWarn})))
	s := &benchServer{poolSize: cfg.poolSize, key: "bb_bench_" + benchRandomHex(16)}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	s.db, err = sqlite.Open(ctx, filepath.Join(cfg.dataDir, "browserd.db"), logger)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	project, err := bootstrap(ctx, s.db, s.key, io.Discard)
	if err != nil {
		return nil, err
	}
	s.projectID = project.ID
	// The default project allows 25 live sessions; density and the burst need more.
	if _, err := s.db.UpdateProject(ctx, project.ID, func(p *bb.Project) error {
		p.Concurrency = max(p.Concurrency, cfg.maxSessions)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("raise project concurrency: %w", err)
	}
	secret, err := signingSecret(ctx, s.db)
	if err != nil {
		return nil, err
	}
	signer, err := bb.NewSigner(secret)
	if err != nil {
		return nil, err
	}
	node, err := nodeID(cfg.dataDir)
	if err != nil {
		return nil, err
	}
	l, err := chrome.New(chrome.Config{Path: cfg.chromePath, RunDir: filepath.Join(cfg.dataDir, "run"), Logger: logger})
	if err != nil {
		return nil, err
	}
	s.launches = &benchLauncher{Launcher: l}
	s.mgr, err = bb.NewManager(bb.ManagerConfig{
		Store: s.db, Launcher: s.launches, Signer: signer, Logger: logger, NodeID: node,
		MaxSessions: cfg.maxSessions, MaxLaunches: cfg.maxLaunches,
		ConnectTimeout: -1, // the bench creates sessions it connects to later (density)
		Pool:           bb.PoolConfig{Size: cfg.poolSize, MaxMemory: 0, IdleExpiry: 0},
	})
	if err != nil {
		return nil, err
	}
	if err := s.mgr.Reconcile(ctx); err != nil {
		return nil, err
	}
	s.gw = cdpproxy.New(cdpproxy.Config{Sessions: s.mgr, Logger: logger})
	api, err := httpapi.New(httpapi.Config{Sessions: s.mgr, Logger: logger})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.base = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: routes(api.Handler(), s.gw), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	s.serveDone = make(chan error, 1)
	go func() { s.serveDone <- s.srv.Serve(ln) }() // ends in close, which reads serveDone
	s.client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
	}}
	return s, nil
}

// close shuts the server down like serve does: gateway, sessions, HTTP, database.
func (s *benchServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if s.gw != nil {
		errs = append(errs, s.gw.Shutdown(ctx))
	}
	if s.mgr != nil {
		errs = append(errs, s.mgr.Close(ctx))
	}
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx))
		if err := <-s.serveDone; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// benchSession is what the bench reads of an API session.
type benchSession struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	ConnectURL string `json:"connectUrl"`
}

// do sends one API request and decodes a JSON answer with status want into out.
func (s *benchServer) do(ctx context.Context, method, path, body string, want int, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-BB-API-Key", s.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d (want %d): %.300s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// create sends POST /v1/sessions and returns the session and the time to the 201.
func (s *benchServer) create(ctx context.Context, body string) (benchSession, time.Duration, error) {
	var sess benchSession
	start := time.Now()
	err := s.do(ctx, http.MethodPost, "/v1/sessions", body, http.StatusCreated, &sess)
	d := time.Since(start)
	if err == nil && (sess.ID == "" || sess.ConnectURL == "" || sess.Status != "RUNNING") {
		err = fmt.Errorf("create answered %+v", sess)
	}
	return sess, d, err
}

// release sends REQUEST_RELEASE.
func (s *benchServer) release(ctx context.Context, id string) error {
	return s.do(ctx, http.MethodPost, "/v1/sessions/"+id, `{"status":"REQUEST_RELEASE"}`, http.StatusOK, nil)
}

// pid returns the main process id of a session's browser.
func (s *benchServer) pid(ctx context.Context, id string) (int, error) {
	sess, err := s.mgr.Session(ctx, s.projectID, id)
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
	return benchWaitGroupGone(ctx, pid)
}

// benchWaitGroupGone waits until process group pgid has no process left.
func benchWaitGroupGone(ctx context.Context, pgid int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("browser process group %d still alive: %w", pgid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// waitPoolFull waits until the warm pool holds poolSize ready browsers and launches
// nothing, so that a create finds it full and no refill competes for the CPU.
func (s *benchServer) waitPoolFull(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		st := s.mgr.PoolStats()
		if st.Ready >= s.poolSize && st.Launching == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("warm pool not full (%+v): %w", st, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// benchLauncher counts the browsers starting at one moment: from Launch until
// WaitReady returns, which is the span of a launch slot in the Manager.
type benchLauncher struct {
	*chrome.Launcher

	mu            sync.Mutex
	starting, top int
	total         int
}

func (l *benchLauncher) Launch(ctx context.Context, opts bb.LaunchOptions) (bb.Browser, error) {
	b, err := l.Launcher.Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	cb, ok := b.(*chrome.Browser)
	if !ok {
		return b, nil // not countable; never happens with chrome.Launcher
	}
	l.mu.Lock()
	l.starting++
	l.total++
	l.top = max(l.top, l.starting)
	l.mu.Unlock()
	return &benchBrowser{Browser: cb, l: l}, nil
}

// resetTop starts a new count of the most launches at once.
func (l *benchLauncher) resetTop() {
	l.mu.Lock()
	l.top = l.starting
	l.mu.Unlock()
}

func (l *benchLauncher) maxStarting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.top
}

func (l *benchLauncher) done() {
	l.mu.Lock()
	l.starting--
	l.mu.Unlock()
}

// benchBrowser is a chrome.Browser (Memory included) whose readiness is counted.
type benchBrowser struct {
	*chrome.Browser
	l    *benchLauncher
	once sync.Once
}

func (b *benchBrowser) WaitReady(ctx context.Context) error {
	defer b.once.Do(b.l.done)
	return b.Browser.WaitReady(ctx)
}

func (b *benchBrowser) Close(ctx context.Context) error {
	b.once.Do(b.l.done)
	return b.Browser.Close(ctx)
}

func benchRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand aborts instead)
	return hex.EncodeToString(b)
}
