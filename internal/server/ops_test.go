package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// scrape GETs /metrics with an optional bearer token and returns the status and the
// samples by "name{labels}".
func scrape(t *testing.T, base, token string) (int, map[string]float64) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	samples := make(map[string]float64)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, samples
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return resp.StatusCode, samples
}

// TestMetricsDuringSession scrapes a real server before, during and after a session with
// a CDP client, and checks that the session shows up and the counters move.
func TestMetricsDuringSession(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--metrics-token", testMetricsToken)
	code, before := scrape(t, srv.URL, testMetricsToken)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, name := range []string{"browserd_session_creates_accepted_total", `browserd_cdp_bytes_total{direction="browser_to_client"}`, "browserd_cdp_connections"} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("before any session, %s = %v (present %v); want 0", name, v, ok)
		}
	}
	if _, ok := before["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := mustDial(t, ctx, sess.ConnectURL)
	if _, err := c.version(ctx); err != nil {
		t.Fatalf("Browser.getVersion: %v", err)
	}
	_, during := scrape(t, srv.URL, testMetricsToken)
	mem := `browserd_session_memory_bytes{project_id="` + sess.ProjectID + `",session_id="` + sess.ID + `"}`
	cpu := `browserd_session_cpu_seconds_total{project_id="` + sess.ProjectID + `",session_id="` + sess.ID + `"}`
	running := `browserd_sessions{project_id="` + sess.ProjectID + `",status="RUNNING"}`
	checks := []struct {
		name string
		ok   func(float64) bool
		want string
	}{
		{"browserd_session_creates_accepted_total", func(v float64) bool { return v == 1 }, "1"},
		{running, func(v float64) bool { return v == 1 }, "1"},
		{"browserd_node_sessions", func(v float64) bool { return v == 1 }, "1"},
		{`browserd_session_create_duration_seconds_count{outcome="accepted"}`, func(v float64) bool { return v == 1 }, "1"},
		{`browserd_browser_launch_duration_seconds_count{outcome="ready"}`, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{"browserd_cdp_connections", func(v float64) bool { return v == 1 }, "1"},
		{`browserd_cdp_bytes_total{direction="client_to_browser"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`browserd_cdp_bytes_total{direction="browser_to_client"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{mem, func(v float64) bool { return v > 10<<20 }, "> 10 MiB"},
		{cpu, func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, ck := range checks {
		if v, ok := during[ck.name]; !ok || !ck.ok(v) {
			t.Errorf("during the session, %s = %v (present %v); want %s", ck.name, v, ok, ck.want)
		}
	}

	// The API reports the same measurements on the session (spec §2.2).
	var got struct {
		AvgCPUUsage *int64 `json:"avgCpuUsage"`
		MemoryUsage *int64 `json:"memoryUsage"`
	}
	callJSON(t, srv.URL, "GET", "/v1/sessions/"+sess.ID, testAPIKey, nil, http.StatusOK, &got)
	if got.MemoryUsage == nil || *got.MemoryUsage < 10<<20 || got.AvgCPUUsage == nil || *got.AvgCPUUsage < 0 {
		t.Errorf("session avgCpuUsage %v, memoryUsage %v; want both, memory > 10 MiB", got.AvgCPUUsage, got.MemoryUsage)
	}

	srv.release(t, testAPIKey, sess.ID)
	_, after := scrape(t, srv.URL, testMetricsToken)
	completed := `browserd_sessions{project_id="` + sess.ProjectID + `",status="COMPLETED"}`
	if after[completed] != 1 || after[running] != 0 {
		t.Errorf("after release: %s = %v, %s = %v; want 1 and 0 (absent)", completed, after[completed], running, after[running])
	}
	if _, ok := after[mem]; ok {
		t.Errorf("after release, %s is still exported", mem)
	}
	var ended struct {
		MemoryUsage *int64 `json:"memoryUsage"`
	}
	callJSON(t, srv.URL, "GET", "/v1/sessions/"+sess.ID, testAPIKey, nil, http.StatusOK, &ended)
	if ended.MemoryUsage == nil || *ended.MemoryUsage < 10<<20 {
		t.Errorf("ended session memoryUsage = %v; want the last sample", ended.MemoryUsage)
	}

	// A refused create is counted with its reason.
	call(t, srv.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{"projectId": "someone-elses"})
	_, refused := scrape(t, srv.URL, testMetricsToken)
	if v := refused[`browserd_session_creates_refused_total{reason="invalid"}`]; v != 1 {
		t.Errorf("refused{invalid} = %v; want 1", v)
	}
}

// testMetricsToken is the metrics token of the servers the tests start with one.
const testMetricsToken = "metrics-e2e-token-0123456789"

// TestMetricsToken checks that /metrics always needs its token, from loopback too (the
// browsers of sessions reach the server's loopback, security review F3), and that
// without a token the metrics are off.
func TestMetricsToken(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--metrics-token", testMetricsToken)
	if code, _ := scrape(t, srv.URL, ""); code != http.StatusUnauthorized {
		t.Errorf("without the token from loopback: %d; want 401", code)
	}
	if code, _ := scrape(t, srv.URL, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d; want 401", code)
	}
	if code, m := scrape(t, srv.URL, testMetricsToken); code != http.StatusOK || m["browserd_node_capacity"] != 32 {
		t.Errorf("with the token: %d, capacity %v; want 200 and 32", code, m["browserd_node_capacity"])
	}

	off := startServer(t, t.TempDir(), defaultEnv())
	for _, tok := range []string{"", testMetricsToken} {
		if code, _ := scrape(t, off.URL, tok); code != http.StatusForbidden {
			t.Errorf("no --metrics-token, from loopback, token %q: %d; want 403", tok, code)
		}
	}
	// /readyz shows whether the node is ready to anyone, and why only with the token.
	code, body := call(t, off.URL, "GET", "/readyz", "", nil)
	if diff := cmp.Diff(string(body), `{"ready":true}`+"\n"); code != http.StatusOK || diff != "" {
		t.Errorf("/readyz without the token = %d, body (-got +want):\n%s", code, diff)
	}
	if code, r := readyz(t, off.URL, testMetricsToken); code != http.StatusOK || r.Checks != nil {
		t.Errorf("/readyz with a token the server does not have = %d %+v; want no details", code, r)
	}
	if code, r := readyz(t, srv.URL, testMetricsToken); code != http.StatusOK || r.Checks["chromium"].Detail == "" {
		t.Errorf("/readyz with the token = %d %+v; want the details", code, r)
	}
}

// readyz GETs /readyz with a metrics token and decodes it.
func readyz(t *testing.T, base, token string) (int, readyResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	code := resp.StatusCode
	var r readyResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz body %s: %v", body, err)
	}
	return code, r
}

// TestReadyz runs a server on a Chromium reached through a symlink, removes the symlink,
// and checks that /readyz turns 503 and says why while /healthz stays 200.
func TestReadyz(t *testing.T) {
	real, err := filepath.EvalSymlinks(chrometest.Chrome(t))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "chrome")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), defaultEnv(), "--chrome", link, "--max-sessions", "1", "--metrics-token", testMetricsToken,
		"--chrome-args", "--lang=fr-FR  --disable-sync")
	code, r := readyz(t, srv.URL, testMetricsToken)
	if code != http.StatusOK || !r.Ready || !r.Checks["store"].OK || !strings.HasPrefix(r.Checks["chromium"].Detail, "Chromium") ||
		r.Checks["capacity"].Detail != "0 of 1 sessions" || len(r.Reasons) != 0 || r.Checks["blobs"] != (check{OK: true, Detail: "fs: local disk"}) {
		t.Fatalf("/readyz = %d %+v; want 200, ready, Chromium's version, 0 of 1 sessions, blobs on the local disk", code, r)
	}

	// At capacity the node is not ready for more sessions.
	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	pids := browserPIDs(t, srv.DataDir)
	if len(pids) != 1 {
		t.Fatalf("browser processes %v; want 1", pids)
	}
	if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pids[0]) + "/cmdline"); err != nil ||
		!strings.Contains(string(cmdline), "\x00--lang=fr-FR\x00") {
		t.Errorf("--chrome-args did not reach Chromium: %q, %v", cmdline, err)
	}
	if code, r := readyz(t, srv.URL, testMetricsToken); code != http.StatusServiceUnavailable || r.Ready || r.Checks["capacity"].OK {
		t.Errorf("/readyz at capacity = %d %+v; want 503", code, r)
	}
	srv.release(t, testAPIKey, sess.ID)
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := readyz(t, srv.URL, testMetricsToken); code != http.StatusOK; code, _ = readyz(t, srv.URL, testMetricsToken) {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 503 30s after the only session was released")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	code, r = readyz(t, srv.URL, testMetricsToken)
	if code != http.StatusServiceUnavailable || r.Ready || r.Checks["chromium"].OK ||
		len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], "chromium: binary "+link) {
		t.Errorf("/readyz without Chromium = %d %+v; want 503 naming the missing binary", code, r)
	}
	if code, body := call(t, srv.URL, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz without Chromium = %d %s; want 200 (the process is up)", code, body)
	}
}

type fakePinger struct{ err error }

func (p fakePinger) Ping(context.Context) error { return p.err }

// TestReadinessChecks covers the checks one by one with a shell script for Chromium.
func TestReadinessChecks(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := script("good", `echo "Chromium 1.2.3"`)
	broken := script("broken", `echo "error while loading shared libraries" >&2; exit 127`)
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	capacity := func(used, max int, closed bool) func() (int, int, bool) {
		return func() (int, int, bool) { return used, max, closed }
	}
	tests := []struct {
		name     string
		r        *readiness
		failures int
		want     []string // reasons
	}{
		{name: "ready", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(1, 2, false)}},
		{name: "store down", r: &readiness{store: fakePinger{errors.New("disk I/O error")}, chrome: good, capacity: capacity(0, 2, false)},
			want: []string{"store: disk I/O error"}},
		{name: "no chromium", r: &readiness{store: fakePinger{}, chrome: filepath.Join(dir, "missing"), capacity: capacity(0, 2, false)},
			want: []string{"chromium: binary " + filepath.Join(dir, "missing") + ": no such file or directory"}},
		{name: "not executable", r: &readiness{store: fakePinger{}, chrome: notExec, capacity: capacity(0, 2, false)},
			want: []string{"chromium: binary " + notExec + " is not an executable file"}},
		{name: "version fails", r: &readiness{store: fakePinger{}, chrome: broken, capacity: capacity(0, 2, false)},
			want: []string{"chromium: " + broken + " --version: exit status 127: error while loading shared libraries"}},
		{name: "launches fail", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, false)}, failures: 3,
			want: []string{"chromium: the last 3 launches failed: no DevTools port"}},
		{name: "launches refused for their arguments don't count", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, false)},
			failures: -3},
		{name: "two failures are tolerated", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, false)}, failures: 2},
		{name: "full", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(2, 2, false)},
			want: []string{"capacity: 2 of 2 sessions"}},
		{name: "closing", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, true)},
			want: []string{"capacity: shutting down"}},
		{name: "starting", r: &readiness{store: fakePinger{}, chrome: good},
			want: []string{"capacity: starting"}},
		{name: "disk low", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, false),
			disk: func() (bool, string) { return false, "low on disk space (10 MiB free, 1024 MiB needed)" }},
			want: []string{"disk: low on disk space (10 MiB free, 1024 MiB needed)"}},
		{name: "disk fine", r: &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 2, false),
			disk: func() (bool, string) { return true, "5000 MiB free" }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.versionTTL = time.Hour
			for range tt.failures {
				tt.r.launched(errors.New("no DevTools port"))
			}
			for range -tt.failures { // security-review F6
				tt.r.launched(fmt.Errorf("%w: fork/exec /usr/bin/setpriv: invalid argument", bb.ErrLaunchArgs))
			}
			got := tt.r.check(t.Context())
			if diff := cmp.Diff(got.Reasons, append([]string{}, tt.want...)); diff != "" || got.Ready != (len(tt.want) == 0) {
				t.Errorf("check: ready %v, reasons (-got +want):\n%s", got.Ready, diff)
			}
		})
	}

	// A launch that succeeds clears the failures; a changed binary is asked again.
	r := &readiness{store: fakePinger{}, chrome: good, capacity: capacity(0, 1, false), versionTTL: time.Hour}
	for range 3 {
		r.launched(errors.New("boom"))
	}
	r.launched(nil)
	if got := r.check(t.Context()); !got.Ready || got.Checks["chromium"].Detail != "Chromium 1.2.3" {
		t.Errorf("after a good launch: %+v", got)
	}
	script("good", `echo "Chromium 4.5.6 (a longer line)"`)
	if got := r.check(t.Context()); got.Checks["chromium"].Detail != "Chromium 4.5.6 (a longer line)" {
		t.Errorf("after the binary changed: %+v; want the new version", got.Checks["chromium"])
	}
}
