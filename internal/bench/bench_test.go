package bench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/server"
)

// TestBenchQuick runs `browserd bench --quick` against real Chromium as a smoke test: it
// must finish, fill every row of the report and leave nothing behind. It asserts no
// speed: the numbers of a noisy shared machine belong in docs/PERFORMANCE.md.
func TestBenchQuick(t *testing.T) {
	chrometest.Chrome(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "PERFORMANCE.md")
	var stdout bytes.Buffer
	// The clients phase (node and the npm clients) has its own test, TestBenchClients.
	args := []string{"--quick", "--write", "--out", out, "--tmp-dir", tmp, "--phases", "create,lifecycle,cdp,api,burst,density"}
	if err := Run(t.Context(), args, &stdout, t.Output(), "test"); err != nil {
		t.Fatalf("browserd bench %s: %v; stdout:\n%s", strings.Join(args, " "), err, stdout.String())
	}
	t.Logf("table:\n%s", stdout.String())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	report := string(data)
	var rows int
	clients := false
	for line := range strings.SplitSeq(report, "\n") {
		if strings.HasPrefix(line, "### ") {
			clients = line == "### "+benchClientsGroup
		}
		cells := strings.Split(line, " | ")
		if clients || len(cells) != 5 || strings.HasPrefix(line, "| metric") || strings.HasPrefix(line, "| ---") {
			continue
		}
		rows++
		metric, value, target, verdict := cells[0], cells[1], cells[3], strings.TrimSuffix(cells[4], " |")
		if value == "" || strings.Contains(value, "n/a") || strings.Contains(value, "NaN") {
			t.Errorf("row %s has no value: %q", metric, line)
		}
		if target != "" && !strings.HasPrefix(verdict, "met") && !strings.HasPrefix(verdict, "MISSED") {
			t.Errorf("row %s has a target but no verdict: %q", metric, line)
		}
	}
	for _, want := range []string{
		"warm create p50", "warm create p99", "cold create p90", "browserd lifecycle p50", "bare Chromium p99",
		"ratio browserd / bare", "via gateway p99", "via TCP pass-through p50", "relay CPU per round trip",
		"screenshot throughput via gateway", "gateway / direct throughput", "PSS per session", "PSS per bare Chromium",
		"largest N healthy", "GET /v1/sessions/{id} throughput", "GET p99 during a burst", "most browsers starting at once",
		"| Chromium | Chromium ", "Command: `browserd bench --quick",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if rows < 50 {
		t.Errorf("report has %d table rows; want at least 50:\n%s", rows, report)
	}
	for _, p := range chrometest.Processes(t, tmp) {
		t.Errorf("process left behind: %s", p)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "PERFORMANCE.md" {
			t.Errorf("left in the temp dir: %s", e.Name())
		}
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(c benchConfig) string // "" when as expected
		wantErr bool
	}{
		{name: "defaults", want: func(c benchConfig) string {
			if !c.write || c.rounds != 5 || c.burst != 40 || c.density != 20 || c.out != "docs/PERFORMANCE.md" {
				return "full defaults expected"
			}
			return ""
		}},
		{name: "quick", args: []string{"--quick"}, want: func(c benchConfig) string {
			if c.write || c.rounds != 2 || c.burst != 4 || c.apiDur != 300*time.Millisecond {
				return "quick defaults expected"
			}
			return ""
		}},
		{name: "quick keeps explicit flags", args: []string{"--quick", "--write", "--rounds", "3"}, want: func(c benchConfig) string {
			if !c.write || c.rounds != 3 || c.createN != 2 {
				return "explicit flags must win over quick defaults"
			}
			return ""
		}},
		{name: "zero rounds", args: []string{"--rounds", "0"}, wantErr: true},
		{name: "ramp below density", args: []string{"--density", "20", "--density-max", "10"}, wantErr: true},
		{name: "no pool", args: []string{"--pool-size", "0"}, wantErr: true},
		{name: "argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseBenchFlags(tt.args, &bytes.Buffer{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseBenchFlags(%q) error = %v; want error %v", tt.args, err, tt.wantErr)
			}
			if err == nil && tt.want != nil {
				if msg := tt.want(c); msg != "" {
					t.Errorf("parseBenchFlags(%q) = %+v: %s", tt.args, c, msg)
				}
			}
		})
	}
}

func TestBenchUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run(t.Context(), []string{"--rounds", "x"}, &out, &errOut, "test"); !errors.Is(err, server.ErrUsage) {
		t.Errorf("bad flag: %v; want a usage error (exit code 2; stderr %q)", err, errOut.String())
	}
	if err := Run(t.Context(), []string{"-h"}, &out, &errOut, "test"); err != nil {
		t.Errorf("-h: %v; want nil (exit code 0)", err)
	}
}

func TestWriteBenchReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "PERFORMANCE.md")
	if err := writeBenchReport(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), benchBegin, "hand-written intro\n"+benchBegin, 1) + "\n## Analysis\nkept\n"
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchReport(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(edited, "first\n", "second\n", 1)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("report after the second write (-want +got):\n%s", diff)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchReport(path, "third\n"); err == nil {
		t.Error("writeBenchReport over a file without markers: no error; want one (it must not clobber it)")
	}
}

func TestBenchParseStat(t *testing.T) {
	tests := []struct {
		in   string
		want benchProc
		ok   bool
	}{
		{in: "123 (chromium) S 1 123 123 0 -1", want: benchProc{pid: 123, ppid: 1, pgrp: 123}, ok: true},
		{in: "77 (a b) c)) R 5 70 70", want: benchProc{pid: 77, ppid: 5, pgrp: 70}, ok: true},
		{in: "9 (x) Z 1 9 9"},
		{in: "9 (x) S 1"},
		{in: "(x) S 1 2"},
		{in: ""},
	}
	for _, tt := range tests {
		got, ok := benchParseStat([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("benchParseStat(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzBenchParseStat(f *testing.F) {
	f.Add([]byte("123 (chromium) S 1 123 123 0 -1"))
	f.Add([]byte("77 (a b) c)) R 5 70 70"))
	f.Fuzz(func(t *testing.T, data []byte) {
		benchParseStat(data) // must not panic; any answer is fine for a non-kernel input
	})
}

func TestBenchParsePoolMetrics(t *testing.T) {
	const full = `# HELP browserd_pool_browsers Browsers of the warm pool.
# TYPE browserd_pool_browsers gauge
browserd_pool_browsers{shelf="default",state="launching"} 1
browserd_pool_browsers{shelf="default",state="ready"} 2
browserd_pool_browsers{shelf="keyed",state="launching"} 3
browserd_pool_browsers{shelf="keyed",state="ready"} 4
browserd_pool_takes_total{result="hit"} 17
browserd_pool_takes_total{result="miss"} 3
browserd_sessions{project_id="p",status="RUNNING"} 4
`
	got, err := benchParsePoolMetrics(strings.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	if want := (benchPoolStats{ready: 2, launching: 1, hits: 17, misses: 3}); got != want {
		t.Errorf("benchParsePoolMetrics = %+v; want %+v", got, want)
	}
	for _, bad := range []string{
		"browserd_pool_browsers{state=\"ready\"} 2\n", // series missing
		strings.Replace(full, "} 17", "} x", 1),
		strings.Replace(full, "} 17", "} -1", 1),
	} {
		if _, err := benchParsePoolMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("benchParsePoolMetrics(%q): no error", bad)
		}
	}
}

func FuzzBenchParsePoolMetrics(f *testing.F) {
	f.Add([]byte("browserd_pool_browsers{shelf=\"default\",state=\"ready\"} 2\nbrowserd_pool_browsers{shelf=\"default\",state=\"launching\"} 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := benchParsePoolMetrics(bytes.NewReader(data))
		if err == nil && (st.ready < 0 || st.launching < 0 || st.hits < 0 || st.misses < 0) {
			t.Fatalf("benchParsePoolMetrics(%q) = %+v", data, st)
		}
	})
}
