// Package metrics exports browserd's Prometheus metrics: sessions by status and project,
// create outcomes and latencies, browser launch latencies, the warm pool, the CDP
// gateway, the CPU and memory of each live session's browser, and the Go runtime.
//
// Everything is registered on a registry the caller passes in (no global state), and
// values owned by other components (the store, the Manager, the gateway) are read at
// scrape time. README.md ("Metrics") lists every metric.
package metrics
