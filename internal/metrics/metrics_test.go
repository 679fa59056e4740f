package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	bb "github.com/browserd/browserd"
)

type fakeStore struct {
	counts []bb.SessionCount
	err    error
}

func (f *fakeStore) SessionCounts(context.Context) ([]bb.SessionCount, error) { return f.counts, f.err }

type fakeNode struct{}

func (fakeNode) LiveUsage() []bb.SessionUsage {
	return []bb.SessionUsage{{SessionID: "s1", ProjectID: "p1", Usage: bb.Usage{CPU: 1500 * time.Millisecond, Memory: 100 << 20}}}
}
func (fakeNode) PoolStats() bb.PoolStats {
	return bb.PoolStats{Ready: 3, Launching: 1, KeyedReady: 1, Hits: 5, Misses: 3}
}
func (fakeNode) Capacity() (int, int, bool) { return 3, 8, false }

// scrape serves the registry through Handler with its token and returns the body.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	Handler(reg, testToken, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := &fakeStore{counts: []bb.SessionCount{{ProjectID: "p1", Status: bb.StatusRunning, N: 2}, {ProjectID: "p2", Status: bb.StatusCompleted, N: 7}}}
	m, err := New(Config{Registry: reg, Version: "v9"})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Watch(Sources{
		Sessions: store, Node: fakeNode{},
		CDP: func() CDPStats { return CDPStats{Connections: 4, ClientBytes: 10, BrowserBytes: 20} },
	})
	if err != nil {
		t.Fatal(err)
	}
	m.CreateAccepted("p1", 300*time.Millisecond)
	m.CreateAccepted("p1", 2*time.Second)
	m.CreateRefused("p1", bb.RefusedConcurrency, time.Millisecond)
	m.BrowserLaunched(700*time.Millisecond, nil)
	m.BrowserLaunched(30*time.Second, errors.New("timeout"))

	body := scrape(t, reg)
	for _, want := range []string{
		`browserd_build_info{goversion="go`,
		`browserd_sessions{project_id="p1",status="RUNNING"} 2`,
		`browserd_sessions{project_id="p2",status="COMPLETED"} 7`,
		`browserd_node_sessions 3`,
		`browserd_node_capacity 8`,
		`browserd_pool_browsers{shelf="default",state="ready"} 2`,
		`browserd_pool_browsers{shelf="default",state="launching"} 1`,
		`browserd_pool_browsers{shelf="keyed",state="ready"} 1`,
		`browserd_pool_browsers{shelf="keyed",state="launching"} 0`,
		`browserd_pool_takes_total{result="hit"} 5`,
		`browserd_cdp_connections 4`,
		`browserd_cdp_bytes_total{direction="client_to_browser"} 10`,
		`browserd_cdp_bytes_total{direction="browser_to_client"} 20`,
		`browserd_session_cpu_seconds_total{project_id="p1",session_id="s1"} 1.5`,
		`browserd_session_memory_bytes{project_id="p1",session_id="s1"} 1.048576e+08`,
		`browserd_session_creates_accepted_total 2`,
		`browserd_session_creates_refused_total{reason="concurrency"} 1`,
		`browserd_session_creates_refused_total{reason="capacity"} 0`,
		`browserd_session_create_duration_seconds_count{outcome="accepted"} 2`,
		`browserd_session_create_duration_seconds_bucket{outcome="accepted",le="0.5"} 1`,
		`browserd_browser_launch_duration_seconds_count{outcome="ready"} 1`,
		`browserd_browser_launch_duration_seconds_count{outcome="failed"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}

	// A failing store hides only its own metric.
	store.err = errors.New("database is locked")
	body = scrape(t, reg)
	if strings.Contains(body, "browserd_sessions{") || !strings.Contains(body, "browserd_node_sessions 3") {
		t.Errorf("with a failing store, metrics = %s", body)
	}
}

func TestNewRequiresRegistry(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a registry = nil error")
	}
	reg := prometheus.NewRegistry()
	m, err := New(Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(Sources{}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registry: reg}); err == nil {
		t.Error("registering twice on one registry = nil error")
	}
}

const testToken = "metrics-token-0123456789abcdef"

// TestHandlerAccess checks that the metrics always need their token, from loopback too.
func TestHandlerAccess(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, remote, auth string
		want                      int
	}{
		// No address is trusted: a session's browser reaches the server's loopback (F3).
		{name: "no token configured, loopback v4", remote: "127.0.0.1:5000", want: 403},
		{name: "no token configured, loopback v6", remote: "[::1]:5000", want: 403},
		{name: "no token configured, v4-mapped loopback", remote: "[::ffff:127.0.0.1]:5000", want: 403},
		{name: "no token configured, remote", remote: "192.0.2.7:5000", want: 403},
		{name: "no token configured, empty bearer", remote: "127.0.0.1:5000", auth: "Bearer ", want: 403},
		{name: "token, none sent from loopback", token: testToken, remote: "127.0.0.1:5000", want: 401},
		{name: "token, none sent from v6 loopback", token: testToken, remote: "[::1]:5000", want: 401},
		{name: "token, wrong", token: testToken, remote: "192.0.2.7:5000", auth: "Bearer nope", want: 401},
		{name: "token, empty", token: testToken, remote: "127.0.0.1:5000", auth: "Bearer ", want: 401},
		{name: "token, basic scheme", token: testToken, remote: "192.0.2.7:5000", auth: "Basic " + testToken, want: 401},
		{name: "token, right", token: testToken, remote: "192.0.2.7:5000", auth: "Bearer " + testToken, want: 200},
		{name: "token, right, loopback", token: testToken, remote: "127.0.0.1:5000", auth: "Bearer " + testToken, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.RemoteAddr = tt.remote
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			Handler(reg, tt.token, nil).ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.want, body)
			}
			if tt.want == 200 && !strings.Contains(string(body), "go_goroutines") {
				t.Errorf("body lacks go_goroutines: %s", body)
			}
			if tt.want != 200 && !strings.Contains(string(body), fmt.Sprintf(`"statusCode":%d`, tt.want)) {
				t.Errorf("error body not in the API error shape: %s", body)
			}
		})
	}
}
