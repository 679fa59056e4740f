package metrics

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	bb "github.com/browserd/browserd"
)

// sessionCounter counts stored sessions; *sqlite.DB satisfies it.
type sessionCounter interface {
	SessionCounts(ctx context.Context) ([]bb.SessionCount, error)
}

// node is this node's session Manager; *bb.Manager satisfies it.
type node interface {
	LiveUsage() []bb.SessionUsage
	PoolStats() bb.PoolStats
	Capacity() (used, max int, closed bool)
}

// CDPStats are the CDP gateway's counters at one moment.
type CDPStats struct {
	Connections  int   // open client connections
	ClientBytes  int64 // relayed from clients to browsers, since start
	BrowserBytes int64 // relayed from browsers to clients, since start
}

// Config configures Metrics.
type Config struct {
	// Registry receives every collector; required.
	Registry prometheus.Registerer
	// Version is exported as the version label of browserd_build_info.
	Version string
	// Logger receives scrape errors; nil discards them.
	Logger *slog.Logger
	// ScrapeTimeout bounds the store query of a scrape [5s].
	ScrapeTimeout time.Duration
}

// Sources are the components whose state is read at scrape time. Nil ones are left out.
type Sources struct {
	// Sessions counts the stored sessions by project and status.
	Sessions sessionCounter
	// Node is the session Manager: live sessions and their usage, the warm pool, capacity.
	Node node
	// CDP returns the gateway's counters.
	CDP func() CDPStats
}

// Metrics holds browserd's metrics. It implements bb.Observer: give it to the Manager
// as ManagerConfig.Observer so that create and launch outcomes are counted, then call
// Watch with the components it reads at scrape time.
type Metrics struct {
	reg          prometheus.Registerer
	accepted     prometheus.Counter
	refused      *prometheus.CounterVec
	createTime   *prometheus.HistogramVec
	launchTime   *prometheus.HistogramVec
	log          *slog.Logger
	scrapeBudget time.Duration
}

var _ bb.Observer = (*Metrics)(nil)

// latencyBuckets cover a warm create (tens of ms) to a launch stuck until its timeout.
var latencyBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}

// New registers browserd's metrics on cfg.Registry.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registry == nil {
		return nil, errors.New("metrics: Config.Registry is required")
	}
	m := &Metrics{
		reg:          cfg.Registry,
		log:          cfg.Logger,
		scrapeBudget: cfg.ScrapeTimeout,
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "browserd_session_creates_accepted_total",
			Help: "Session creates that returned a session.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "browserd_session_creates_refused_total",
			Help: "Session creates that failed, by reason: concurrency (project limit), capacity (node full), invalid, shutdown, canceled (client gone), error.",
		}, []string{"reason"}),
		createTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "browserd_session_create_duration_seconds",
			Help:    "Time to answer a session create, by outcome (accepted or refused).",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
		launchTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "browserd_browser_launch_duration_seconds",
			Help:    "Time from starting Chromium to a browser ready for CDP, by outcome (ready or failed); warm-pool refills included.",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.scrapeBudget <= 0 {
		m.scrapeBudget = 5 * time.Second
	}
	for _, r := range bb.RefuseReasons { // export zeros, so rate() works from the start
		m.refused.WithLabelValues(string(r))
	}
	for _, o := range []string{"accepted", "refused"} {
		m.createTime.WithLabelValues(o)
	}
	for _, o := range []string{"ready", "failed"} {
		m.launchTime.WithLabelValues(o)
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "browserd_build_info",
		Help:        "Always 1; the labels say which browserd runs.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	cs := []prometheus.Collector{
		m.accepted, m.refused, m.createTime, m.launchTime, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Watch registers the metrics read from src at scrape time. Call it once, when the
// components exist: the Manager needs its Observer before the gateway can be built.
func (m *Metrics) Watch(src Sources) error {
	return m.reg.Register(&scraper{src: src, m: m})
}

// CreateAccepted implements bb.Observer.
func (m *Metrics) CreateAccepted(projectID string, d time.Duration) {
	m.accepted.Inc()
	m.createTime.WithLabelValues("accepted").Observe(d.Seconds())
}

// CreateRefused implements bb.Observer.
func (m *Metrics) CreateRefused(projectID string, reason bb.RefuseReason, d time.Duration) {
	m.refused.WithLabelValues(string(reason)).Inc()
	m.createTime.WithLabelValues("refused").Observe(d.Seconds())
}

// BrowserLaunched implements bb.Observer.
func (m *Metrics) BrowserLaunched(d time.Duration, err error) {
	outcome := "ready"
	if err != nil {
		outcome = "failed"
	}
	m.launchTime.WithLabelValues(outcome).Observe(d.Seconds())
}
