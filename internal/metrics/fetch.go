package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fetches counts POST /v1/fetch per project: the project usage's shape (spec §2.12)
// has no field for fetches, so these counters and the server's "fetch" log line are
// where a project's fetches are counted (docs/COMPATIBILITY.md, "Fetch").
type Fetches struct {
	count    *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// FetchOutcomes are the outcomes a fetch is counted under (internal/fetch Record).
var FetchOutcomes = []string{"ok", "refused", "too_large", "timeout", "unprocessable", "extract_failed", "error"}

// NewFetches registers the fetch metrics on reg.
func NewFetches(reg prometheus.Registerer) (*Fetches, error) {
	f := &Fetches{
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "browserd_fetches_total",
			Help: "POST /v1/fetch requests that passed the concurrency limits, by project, format (raw, markdown, json) and outcome (ok, refused, too_large, timeout, unprocessable, extract_failed, error).",
		}, []string{"project_id", "format", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "browserd_fetch_bytes_total",
			Help: "Response body bytes read by POST /v1/fetch, by project.",
		}, []string{"project_id"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "browserd_fetch_duration_seconds",
			Help:    "Time to answer a POST /v1/fetch, by outcome.",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
	}
	for _, o := range FetchOutcomes {
		f.duration.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{f.count, f.bytes, f.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Observe counts one fetch.
func (f *Fetches) Observe(projectID, format, outcome string, bytes int64, d time.Duration) {
	f.count.WithLabelValues(projectID, format, outcome).Inc()
	f.bytes.WithLabelValues(projectID).Add(float64(bytes))
	f.duration.WithLabelValues(outcome).Observe(d.Seconds())
}
