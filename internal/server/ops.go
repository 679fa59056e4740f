package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdpproxy"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/metrics"
)

// ops is what operators reach besides the API: Prometheus metrics at /metrics and the
// readiness probe at /readyz (routes.go serves them, and /healthz). It is the Manager's Observer.
type ops struct {
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	ready   *readiness
	token   string
	log     *slog.Logger
}

var _ bb.Observer = (*ops)(nil)

// pinger is a store that can tell whether it answers; Store satisfies it.
type pinger interface {
	Ping(ctx context.Context) error
}

// newOps builds the metrics and the readiness checks; watch completes them once the
// Manager and the gateway exist.
func newOps(cfg Config, store pinger, chromePath, version string, logger *slog.Logger) (*ops, error) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registry: reg, Version: version, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &ops{
		reg: reg, metrics: m, token: cfg.MetricsToken, log: logger,
		ready: &readiness{store: store, storeKind: cfg.DatabaseKind(), chrome: chromePath, versionTTL: 10 * time.Minute},
	}, nil
}

// watch gives the metrics and the readiness checks the Manager and the gateway.
func (o *ops) watch(db interface {
	SessionCounts(ctx context.Context) ([]bb.SessionCount, error)
}, mgr *bb.Manager, gw *cdpproxy.Gateway) error {
	o.ready.capacity = mgr.Capacity
	o.ready.admission = mgr.Accepting
	o.ready.disk = mgr.DiskReady
	return o.metrics.Watch(metrics.Sources{
		Sessions: db,
		Node:     mgr,
		CDP: func() metrics.CDPStats {
			st := gw.Stats()
			return metrics.CDPStats{Connections: len(gw.Conns()), ClientBytes: st.ClientBytes, BrowserBytes: st.BrowserBytes}
		},
	})
}

// metricsHandler serves /metrics: Prometheus metrics for the holder of the metrics token.
func (o *ops) metricsHandler() http.Handler { return metrics.Handler(o.reg, o.token, o.log) }

// readyHandler serves /readyz: whether the node is ready, and why to the token holder.
func (o *ops) readyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.ready.serveHTTP(w, r, metrics.Authorized(r, o.token))
	})
}

// CreateAccepted implements bb.Observer.
func (o *ops) CreateAccepted(projectID string, d time.Duration) {
	o.metrics.CreateAccepted(projectID, d)
}

// CreateRefused implements bb.Observer.
func (o *ops) CreateRefused(projectID string, reason bb.RefuseReason, d time.Duration) {
	o.metrics.CreateRefused(projectID, reason, d)
}

// BrowserLaunched implements bb.Observer.
func (o *ops) BrowserLaunched(d time.Duration, err error) {
	o.metrics.BrowserLaunched(d, err)
	o.ready.launched(err)
}

// maxLaunchFailures is how many launches in a row may fail before the node reports
// itself not ready: one failure can be a bad request's flags or a slow start under load.
const maxLaunchFailures = 3

// readiness answers /readyz: the store answers, Chromium can be launched, and the node
// has capacity left.
type readiness struct {
	store      pinger
	storeKind  string // "sqlite" or "postgres", the store check's detail
	chrome     string
	capacity   func() (used, max int, closed bool) // nil until watch
	disk       func() (ok bool, detail string)     // the free-space floor (bb.Manager.DiskReady); nil until watch
	blobs      func(ctx context.Context) check     // the blob store (blobs.go); nil: not checked
	admission  func() error                        // draining or fenced (bb.Manager.Accepting); nil until watch
	cluster    func() check                        // the membership (members.go); nil without a cluster
	versionTTL time.Duration

	vmu          sync.Mutex  // held while --version runs: concurrent probes wait for one run
	versionAt    time.Time   // when `chrome --version` last ran
	versionStamp os.FileInfo // the binary it ran on
	version      string      // its output, or "" when it failed
	versionErr   error

	mu          sync.Mutex // a separate lock, so that launches never wait for --version
	failures    int        // launches in a row that failed
	lastFailure error      // the last of them
}

// launched records a launch's outcome. A launch refused for the request's arguments
// (bb.ErrLaunchArgs) says nothing about the node and does not count (security-review F6).
func (r *readiness) launched(err error) {
	if errors.Is(err, bb.ErrLaunchArgs) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.failures, r.lastFailure = 0, nil
		return
	}
	r.failures++
	r.lastFailure = err
}

// check is one line of the /readyz answer.
type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// readyResponse is the /readyz body (200 when Ready, else 503) for requests with the
// metrics token; others get {"ready":…} only.
type readyResponse struct {
	Ready   bool             `json:"ready"`
	Checks  map[string]check `json:"checks"`
	Reasons []string         `json:"reasons"`
}

// serveHTTP answers /readyz. Anyone may ask whether the node is ready; only the holder
// of the metrics token learns why, since the details name the Chromium binary, its
// version and the load (security review F14).
func (r *readiness) serveHTTP(w http.ResponseWriter, req *http.Request, detailed bool) {
	ctx, cancel := context.WithTimeout(req.Context(), 15*time.Second)
	defer cancel()
	resp := r.check(ctx)
	var body any = resp
	if !detailed {
		body = struct {
			Ready bool `json:"ready"`
		}{resp.Ready}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !resp.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body) // the prober may be gone; nobody to tell
}

// check runs every readiness check.
func (r *readiness) check(ctx context.Context) readyResponse {
	resp := readyResponse{Ready: true, Checks: make(map[string]check), Reasons: []string{}}
	add := func(name string, c check) {
		resp.Checks[name] = c
		if !c.OK {
			resp.Ready = false
			resp.Reasons = append(resp.Reasons, name+": "+c.Detail)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := r.store.Ping(sctx)
	cancel()
	// The detail names the backend and, when it fails, why (never the URL: it may hold
	// a password, and the stores' errors never do).
	if err != nil {
		add("store", check{Detail: strings.TrimPrefix(r.storeKind+": ", ": ") + err.Error()})
	} else {
		add("store", check{OK: true, Detail: r.storeKind})
	}
	if r.blobs != nil {
		add("blobs", r.blobs(ctx))
	}
	add("chromium", r.checkChrome(ctx))
	if r.capacity == nil {
		add("capacity", check{Detail: "starting"})
	} else if used, max, closed := r.capacity(); closed {
		add("capacity", check{Detail: "shutting down"})
	} else {
		add("capacity", check{OK: used < max, Detail: fmt.Sprintf("%d of %d sessions", used, max)})
	}
	if r.admission != nil {
		if err := r.admission(); errors.Is(err, bb.ErrDraining) {
			add("admission", check{Detail: "draining: new sessions are refused"})
		} else if errors.Is(err, bb.ErrFenced) {
			add("admission", check{Detail: "fenced: the node lost its cluster membership"})
		}
	}
	if r.cluster != nil {
		add("cluster", r.cluster())
	}
	if r.disk != nil { // security-review F7/F8: a full disk stops session ends from being recorded
		ok, detail := r.disk()
		add("disk", check{OK: ok, Detail: detail})
	}
	return resp
}

// checkChrome checks that the Chromium binary is there and runs (`--version`, cached
// for versionTTL and while the file is unchanged), and that launches do not keep failing.
func (r *readiness) checkChrome(ctx context.Context) check {
	fi, err := os.Stat(r.chrome)
	if err != nil {
		return check{Detail: fmt.Sprintf("binary %s: %v", r.chrome, errors.Unwrap(err))}
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return check{Detail: fmt.Sprintf("binary %s is not an executable file", r.chrome)}
	}
	r.vmu.Lock()
	stale := r.versionStamp == nil || time.Since(r.versionAt) > r.versionTTL ||
		!fi.ModTime().Equal(r.versionStamp.ModTime()) || fi.Size() != r.versionStamp.Size()
	if stale {
		r.version, r.versionErr = chrome.Version(ctx, r.chrome)
		r.versionAt, r.versionStamp = time.Now(), fi
	}
	version, versionErr := r.version, r.versionErr
	r.vmu.Unlock()
	if versionErr != nil {
		return check{Detail: versionErr.Error()}
	}
	r.mu.Lock()
	failures, last := r.failures, r.lastFailure
	r.mu.Unlock()
	if failures >= maxLaunchFailures {
		return check{Detail: fmt.Sprintf("the last %d launches failed: %v", failures, last)}
	}
	return check{OK: true, Detail: version}
}
