package bench

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/postgres/pgtest"
)

// TestBenchCluster runs the cluster phase, sized down, on three real nodes sharing a
// real PostgreSQL: every row must have a value, latencies and rates must be positive,
// and every create must have landed on one of the bench's nodes. It asserts no speed.
func TestBenchCluster(t *testing.T) {
	chrometest.Chrome(t)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "PERFORMANCE.md")
	var stdout bytes.Buffer
	args := []string{"--quick", "--write", "--out", out, "--tmp-dir", tmp, "--phases", "cluster",
		"--cluster-database", dbURL, "--rtt-calls", "50", "--rtt-warmup", "5"}
	if err := Run(t.Context(), args, &stdout, t.Output(), "test"); err != nil {
		t.Fatalf("browserd bench: %v; stdout:\n%s", err, stdout.String())
	}
	t.Logf("table:\n%s", stdout.String())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	group := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		if g, ok := strings.CutPrefix(line, "### "); ok {
			group = g
		}
		cells := strings.Split(line, " | ")
		if group == benchClusterGroup && len(cells) == 5 && !strings.HasPrefix(line, "| metric") && !strings.HasPrefix(line, "| ---") {
			rows[strings.TrimPrefix(cells[0], "| ")] = cells[1]
		}
	}
	for metric, value := range rows {
		if strings.HasPrefix(metric, "where the creates landed") {
			if !strings.Contains(value, "node") || strings.Contains(value, "other:") {
				t.Errorf("%s: %q", metric, value)
			}
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(value + " x")[0], 64)
		switch {
		case err != nil:
			t.Errorf("%s has no number: %q", metric, value)
		case strings.HasPrefix(metric, "added"): // a difference: noise may make it negative
		case f <= 0:
			t.Errorf("%s = %q; want > 0", metric, value)
		}
	}
	for _, want := range []string{
		"GET /v1/sessions/{id} at the owner p50", "GET /v1/sessions/{id} at the non-owner p90",
		"GET /v1/sessions/{id}/logs at the non-owner p99", "added by the non-owner hop, GET /v1/sessions/{id} (p50)",
		"added by the non-owner hop, GET /v1/sessions/{id}, 1 client, (p50)", "GET /v1/sessions/{id}/logs at the owner throughput (2 clients)",
		"CDP over connectUrl at a non-owner (proxied websocket) p50", "added by the non-owner hop, CDP round trip (p50)",
		"create p50, 1 node", "create p90, 3 nodes", "where the creates landed, 3 nodes",
	} {
		if _, ok := rows[want]; !ok {
			t.Errorf("report lacks row %q", want)
		}
	}
	if len(rows) < 25 {
		t.Errorf("%d cluster rows; want at least 25:\n%s", len(rows), data)
	}
	for _, p := range chrometest.Processes(t, tmp) {
		t.Errorf("process left behind: %s", p)
	}
}

// TestBenchClusterSkipped: without --cluster-database the phase leaves one row that
// says how to run it.
func TestBenchClusterSkipped(t *testing.T) {
	r := &benchRun{log: io.Discard, started: time.Now()}
	if err := r.clusterPhase(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows := r.cluster.rows()
	if len(rows) != 1 || !strings.Contains(rows[0].value(), "--cluster-database") ||
		!strings.Contains(rows[0].value(), "scripts/bench-cluster.sh") {
		t.Errorf("rows = %+v; want one saying how to run the phase", rows)
	}
}
