package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Descriptions of the metrics read at scrape time.
var (
	sessionsDesc = prometheus.NewDesc("browserd_sessions",
		"Sessions in the store, by project and status (every node's, ended ones included).",
		[]string{"project_id", "status"}, nil)
	nodeSessionsDesc = prometheus.NewDesc("browserd_node_sessions",
		"Sessions this node holds: live ones plus creates in progress.", nil, nil)
	nodeCapacityDesc = prometheus.NewDesc("browserd_node_capacity",
		"Sessions this node may hold (--max-sessions).", nil, nil)
	poolDesc = prometheus.NewDesc("browserd_pool_browsers",
		"Browsers of the warm pool, by state (ready: waiting for a session; launching) and shelf (default: the default launch options; keyed: the others creates asked for).",
		[]string{"state", "shelf"}, nil)
	poolTakesDesc = prometheus.NewDesc("browserd_pool_takes_total",
		"Creates that asked the warm pool for a browser, by result (hit or miss).",
		[]string{"result"}, nil)
	cdpConnsDesc = prometheus.NewDesc("browserd_cdp_connections",
		"Open CDP client connections.", nil, nil)
	cdpBytesDesc = prometheus.NewDesc("browserd_cdp_bytes_total",
		"Bytes the CDP gateway relayed, websocket frame headers included, by direction.",
		[]string{"direction"}, nil)
	cpuDesc = prometheus.NewDesc("browserd_session_cpu_seconds_total",
		"CPU time (user+system) of a live session's browser process tree.",
		[]string{"session_id", "project_id"}, nil)
	memDesc = prometheus.NewDesc("browserd_session_memory_bytes",
		"Proportional set size (PSS) of a live session's browser process tree.",
		[]string{"session_id", "project_id"}, nil)
)

// scraper reads the values owned by other components when Prometheus scrapes.
type scraper struct {
	src Sources
	m   *Metrics
}

func (s *scraper) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, nodeSessionsDesc, nodeCapacityDesc, poolDesc,
		poolTakesDesc, cdpConnsDesc, cdpBytesDesc, cpuDesc, memDesc} {
		ch <- d
	}
}

func (s *scraper) Collect(ch chan<- prometheus.Metric) {
	if st := s.src.Sessions; st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.m.scrapeBudget)
		counts, err := st.SessionCounts(ctx)
		cancel()
		if err != nil {
			s.m.log.Error("metrics: count sessions", "err", err)
			ch <- prometheus.NewInvalidMetric(sessionsDesc, err)
			counts = nil
		}
		for _, c := range counts {
			ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(c.N), c.ProjectID, string(c.Status))
		}
	}
	if n := s.src.Node; n != nil {
		used, capacity, _ := n.Capacity()
		ch <- prometheus.MustNewConstMetric(nodeSessionsDesc, prometheus.GaugeValue, float64(used))
		ch <- prometheus.MustNewConstMetric(nodeCapacityDesc, prometheus.GaugeValue, float64(capacity))
		ps := n.PoolStats()
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(ps.Ready-ps.KeyedReady), "ready", "default")
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(ps.Launching-ps.KeyedLaunching), "launching", "default")
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(ps.KeyedReady), "ready", "keyed")
		ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(ps.KeyedLaunching), "launching", "keyed")
		ch <- prometheus.MustNewConstMetric(poolTakesDesc, prometheus.CounterValue, float64(ps.Hits), "hit")
		ch <- prometheus.MustNewConstMetric(poolTakesDesc, prometheus.CounterValue, float64(ps.Misses), "miss")
		for _, u := range n.LiveUsage() {
			ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, u.CPU.Seconds(), u.SessionID, u.ProjectID)
			ch <- prometheus.MustNewConstMetric(memDesc, prometheus.GaugeValue, float64(u.Memory), u.SessionID, u.ProjectID)
		}
	}
	if s.src.CDP != nil {
		st := s.src.CDP()
		ch <- prometheus.MustNewConstMetric(cdpConnsDesc, prometheus.GaugeValue, float64(st.Connections))
		ch <- prometheus.MustNewConstMetric(cdpBytesDesc, prometheus.CounterValue, float64(st.ClientBytes), "client_to_browser")
		ch <- prometheus.MustNewConstMetric(cdpBytesDesc, prometheus.CounterValue, float64(st.BrowserBytes), "browser_to_client")
	}
}
