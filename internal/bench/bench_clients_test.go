package bench

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// benchClientsJSON returns a script answer with every scenario: lifecycle k of a
// scenario has every step (k+1)*base ms, base differing per scenario.
func benchClientsJSON(runs int, base map[string]float64) []byte {
	type scenario struct {
		Name string               `json:"name"`
		Runs []map[string]float64 `json:"runs"`
		CPU  []float64            `json:"cpu,omitempty"`
	}
	var out struct {
		Clients   map[string]string `json:"clients"`
		Scenarios []scenario        `json:"scenarios"`
	}
	out.Clients = map[string]string{"node": "v20.20.2", "playwright": "1.65.1", "sdk": "2.21.0"}
	for _, s := range benchClientsScenarios {
		steps := benchClientsSteps
		if s.bare {
			steps = benchBareSteps
		}
		sc := scenario{Name: s.name}
		if strings.HasSuffix(s.name, "-b2b") { // CPU-s per lifecycle of three blocks, median base/50
			sc.CPU = []float64{base[s.name] / 25, base[s.name] / 100, base[s.name] / 50}
		}
		for k := range runs {
			run := map[string]float64{}
			for _, st := range steps {
				run[st] = float64(k+1) * base[s.name]
			}
			sc.Runs = append(sc.Runs, run)
		}
		out.Scenarios = append(out.Scenarios, sc)
	}
	data, _ := json.Marshal(out) // maps of strings and floats always encode
	return data
}

var benchClientsBase = map[string]float64{
	"defaults-b2b": 10, "defaults-paced": 4, "norec-b2b": 5, "norec-paced": 2, "ctx-proxy-b2b": 6,
	"ctx-proxy-paced": 12, "ctx-persist-proxy-paced": 20, "bare-b2b": 100,
}

func TestBenchParseClients(t *testing.T) {
	good := benchClientsJSON(10, benchClientsBase)
	res, err := benchParseClients(good)
	if err != nil {
		t.Fatal(err)
	}
	if res.playwright != "1.65.1" || res.sdk != "2.21.0" || res.node != "v20.20.2" || len(res.runs) != len(benchClientsScenarios) {
		t.Errorf("benchParseClients = %+v", res)
	}
	// Nearest rank over 10 lifecycles of 10, 20, … 100 ms: p50 the 5th, p90 the 9th.
	if got := res.pct("defaults-b2b", "total", 0.5); got != 50 {
		t.Errorf("defaults-b2b total p50 = %v; want 50", got)
	}
	if got := res.pct("bare-b2b", "launch", 0.9); got != 900 {
		t.Errorf("bare-b2b launch p90 = %v; want 900", got)
	}
	if got := res.pct("bare-b2b", "release", 0.5); !math.IsNaN(got) {
		t.Errorf("bare-b2b has no release step; pct = %v, want NaN", got)
	}

	mutate := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	scenario := func(m map[string]any, i int) map[string]any { return m["scenarios"].([]any)[i].(map[string]any) }
	firstRun := func(m map[string]any, i int) map[string]any {
		return scenario(m, i)["runs"].([]any)[0].(map[string]any)
	}
	bad := map[string]string{
		"empty":            "",
		"not an object":    "[]",
		"two values":       string(good) + " {}",
		"unknown field":    mutate(func(m map[string]any) { m["extra"] = 1 }),
		"no scenarios":     mutate(func(m map[string]any) { m["scenarios"] = []any{} }),
		"unknown scenario": mutate(func(m map[string]any) { scenario(m, 0)["name"] = "nope" }),
		"scenario twice":   mutate(func(m map[string]any) { scenario(m, 1)["name"] = scenario(m, 0)["name"] }),
		"no lifecycles":    mutate(func(m map[string]any) { scenario(m, 0)["runs"] = []any{} }),
		"missing step":     mutate(func(m map[string]any) { delete(firstRun(m, 0), "release") }),
		"extra step":       mutate(func(m map[string]any) { firstRun(m, 0)["warmup"] = 1.0 }),
		"bare with create": mutate(func(m map[string]any) { delete(firstRun(m, 7), "launch"); firstRun(m, 7)["create"] = 1.0 }),
		"negative":         mutate(func(m map[string]any) { firstRun(m, 0)["connect"] = -1.0 }),
		"huge":             mutate(func(m map[string]any) { firstRun(m, 0)["connect"] = 1e12 }),
		"string step":      mutate(func(m map[string]any) { firstRun(m, 0)["connect"] = "1" }),
		"no version":       mutate(func(m map[string]any) { m["clients"].(map[string]any)["sdk"] = "" }),
		"CPU of a paced":   mutate(func(m map[string]any) { scenario(m, 1)["cpu"] = []any{0.5} }),
		"negative CPU":     mutate(func(m map[string]any) { scenario(m, 0)["cpu"] = []any{-0.5} }),
		"string CPU":       mutate(func(m map[string]any) { scenario(m, 0)["cpu"] = []any{"1"} }),
		"failure of an unknown scenario": mutate(func(m map[string]any) {
			m["failures"] = []any{map[string]any{"scenario": "nope", "step": "create", "error": "x"}}
		}),
		"failure at an unknown step": mutate(func(m map[string]any) {
			m["failures"] = []any{map[string]any{"scenario": "defaults-b2b", "step": "launch", "error": "x"}}
		}),
		"failure without an error": mutate(func(m map[string]any) {
			m["failures"] = []any{map[string]any{"scenario": "defaults-b2b", "step": "create", "error": ""}}
		}),
	}
	if benchClientsScenarios[1].name != "defaults-paced" {
		t.Fatalf("the cases above take scenario 1 for a paced one; it is %s", benchClientsScenarios[1].name)
	}
	if got := benchMedian(res.cpu["bare-b2b"]); got != 2 {
		t.Errorf("bare-b2b CPU per lifecycle median = %v; want 2", got)
	}
	if idx := benchClientsIndex("bare-b2b"); idx != 7 {
		t.Fatalf("the cases above take scenario 7 for bare-b2b; it is %d", idx)
	}
	withFailure := mutate(func(m map[string]any) {
		m["failures"] = []any{map[string]any{"scenario": "ctx-proxy-b2b", "step": "firstGoto", "error": "page.goto: net::ERR_NETWORK_CHANGED"}}
	})
	if res, err := benchParseClients([]byte(withFailure)); err != nil || len(res.failures) != 1 || res.failures[0].Step != "firstGoto" {
		t.Errorf("benchParseClients with a failure = %+v, %v", res.failures, err)
	}
	for name, in := range bad {
		if _, err := benchParseClients([]byte(in)); err == nil {
			t.Errorf("%s: benchParseClients(%.200q) = nil error", name, in)
		}
	}
}

func FuzzBenchParseClients(f *testing.F) {
	f.Add(benchClientsJSON(2, benchClientsBase))
	f.Add([]byte(`{"clients":{"node":"a","playwright":"b","sdk":"c"},"scenarios":[{"name":"norec-b2b","runs":[{}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := benchParseClients(data)
		if err != nil {
			return
		}
		for _, s := range benchClientsScenarios {
			for _, st := range append(benchClientsSteps, benchBareSteps...) {
				if v := res.pct(s.name, st, 0.9); v < 0 || math.IsInf(v, 0) {
					t.Fatalf("benchParseClients(%q): %s %s p90 = %v", data, s.name, st, v)
				}
			}
		}
	})
}

// TestBenchClientsRows checks the report rows of the clients phase on known numbers.
func TestBenchClientsRows(t *testing.T) {
	res, err := benchParseClients(benchClientsJSON(10, benchClientsBase))
	if err != nil {
		t.Fatal(err)
	}
	res.n, res.rounds, res.proxied, res.cores = 5, 2, 42, 2
	res.failures = []benchClientsFailure{{Scenario: "norec-b2b", Step: "firstGoto", Error: "page.goto: net::ERR_NETWORK_CHANGED"}}
	got := map[string]benchRow{}
	for _, r := range res.rows() {
		if r.group != benchClientsGroup {
			t.Errorf("row %q in group %q", r.metric, r.group)
		}
		got[r.metric] = r
		if strings.HasPrefix(r.metric, "recordSession false, back-to-back") && r.note != "n=10, 1 failed" {
			t.Errorf("row %q has note %q; want the failure counted", r.metric, r.note)
		}
	}
	tests := []struct {
		metric, value, verdict string
	}{
		{"lifecycle p50 (create → connect → goto → close → release), defaults, back-to-back", "250.0 ms", "MISSED by 130.0 ms (+108 %)"},
		{"lifecycle p90 (create → connect → goto → close → release), defaults, back-to-back", "450.0 ms", "MISSED by 200.0 ms (+80 %)"},
		{"lifecycle p50 defaults back-to-back / bare Chromium p50 (launch → newPage → goto → close)", "0.12 ×", "met, 0.22 × to spare"},
		{"whole lifecycle p50 (both gotos, as timed), defaults, back-to-back", "50.0 ms", ""},
		{"first goto p50, recording on / off (paced)", "2.00 ×", "MISSED by 0.90 × (+82 %)"},
		{"next goto p90, recording on / off (paced)", "2.00 ×", "MISSED by 0.90 × (+82 %)"},
		{"first / next goto p50, recording on / off (back-to-back)", "2.00 / 2.00 ×", ""},
		{"create p50, context (persist false) + proxy / plain warm create (paced)", "3.00 ×", "MISSED by 1.00 × (+50 %)"},
		{"create p50, context (persist true) + proxy / plain warm create (paced)", "5.00 ×", ""},
		{"requests and tunnels through the upstream proxy", "42", ""},
		{"machine CPU per back-to-back lifecycle, refills included (CPU-s, median of blocks)",
			"defaults 0.200 / recordSession false 0.100 / context + proxy 0.120 / bare 2.000", ""},
		{"back-to-back lifecycle floor: that CPU over 2 cores (ms)", "defaults 100 / recordSession false 50 / context + proxy 60 / bare 1000", ""},
		{"failed lifecycles (left out of the numbers)", "1", "MISSED by 1"},
		{"failures", "norec-b2b at firstGoto: page.goto: net::ERR_NETWORK_CHANGED", ""},
		{"defaults (recording on), back-to-back p90: create / connect / first goto / next goto / close / release / lifecycle",
			"90.0 / 90.0 / 90.0 / 90.0 / 90.0 / 90.0 / 90.0 ms", ""},
		{"bare Chromium (Playwright launch), back-to-back p50: launch / newPage / first goto / next goto / close / lifecycle",
			"500.0 / 500.0 / 500.0 / 500.0 / 500.0 / 500.0 ms", ""},
		{"clients and samples", "playwright-core 1.65.1, @browserbasehq/sdk 2.21.0, node v20.20.2; 2 rounds × 5 lifecycles per scenario, paced ones 0s apart", ""},
	}
	for _, tt := range tests {
		r, ok := got[tt.metric]
		if !ok {
			t.Errorf("no row %q", tt.metric)
			continue
		}
		if r.value() != tt.value || r.verdict() != tt.verdict {
			t.Errorf("row %q = %q, %q; want %q, %q", tt.metric, r.value(), r.verdict(), tt.value, tt.verdict)
		}
	}
	// Not run: every row is there, without values, and no target is called met.
	for _, r := range (&benchClientsResult{}).rows() {
		if strings.HasPrefix(r.verdict(), "met") {
			t.Errorf("phase not run, but row %q is %q", r.metric, r.verdict())
		}
	}
}

func TestBenchPlaywrightArgs(t *testing.T) {
	in := []string{"--no-sandbox", "--headless", "--disable-gpu", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir=/x/profile", "--window-size=1280,807", "--headless=new", "--disable-features=A,B", "about:blank"}
	want := []string{"--no-sandbox", "--disable-gpu", "--window-size=1280,807", "--disable-features=A,B"}
	if diff := cmp.Diff(want, benchPlaywrightArgs(in)); diff != "" {
		t.Errorf("benchPlaywrightArgs (-want +got):\n%s", diff)
	}
}

func TestBenchClientsToolsMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, benchClientsScript), []byte("//"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := benchClientsTools(benchConfig{node: "node", compatDir: dir})
	if err == nil {
		t.Fatal("benchClientsTools without node_modules: no error")
	}
	if _, lerr := exec.LookPath("node"); lerr == nil && !strings.Contains(err.Error(), "npm ci --prefix "+dir) {
		t.Errorf("benchClientsTools without node_modules: %v; want an error telling to run npm ci", err)
	}
	if _, _, err := benchClientsTools(benchConfig{node: "node", compatDir: t.TempDir()}); err == nil {
		t.Error("benchClientsTools on a dir without the script: no error")
	}
	if _, _, err := benchClientsTools(benchConfig{node: "no-such-node-binary", compatDir: dir}); err == nil || !strings.Contains(err.Error(), "Node.js") {
		t.Errorf("benchClientsTools without node: %v; want an error naming Node.js", err)
	}
}

// TestBenchUpstream sends an absolute-URI GET and a CONNECT tunnel (HTTPS) through the
// bench's upstream proxy to real servers.
func TestBenchUpstream(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "plain %s", r.URL.Path)
	}))
	defer origin.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %s", r.URL.Path)
	}))
	defer secure.Close()
	up, err := startBenchUpstream()
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := url.Parse(up.url)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}}
	for _, tt := range []struct{ url, want string }{
		{origin.URL + "/a", "plain /a"},
		{secure.URL + "/b", "tls /b"},
		{origin.URL + "/c", "plain /c"},
	} {
		resp, err := c.Get(tt.url)
		if err != nil {
			t.Fatalf("GET %s via the upstream: %v", tt.url, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != tt.want {
			t.Errorf("GET %s via the upstream = %q, %v; want %q", tt.url, body, err, tt.want)
		}
	}
	if r, n := up.requests.Load(), up.tunnels.Load(); r != 2 || n != 1 {
		t.Errorf("upstream counted %d requests, %d tunnels; want 2, 1", r, n)
	}
	// close ends the open tunnel (the client keeps it alive) and returns.
	up.close()
	c.CloseIdleConnections()
	if _, err := c.Get(origin.URL + "/d"); err == nil {
		t.Error("GET through a closed upstream: no error")
	}
}

// benchNeedClients skips the test when node or compat's npm packages are missing, unless
// BROWSERD_REQUIRE_CHROME=1 (as scripts/test.sh sets it) makes that a failure.
func benchNeedClients(t *testing.T) {
	t.Helper()
	if _, _, err := benchClientsTools(benchConfig{node: "node"}); err != nil {
		if os.Getenv(chrometest.RequireEnv) == "1" {
			t.Fatalf("%s=1 but the clients phase cannot run: %v", chrometest.RequireEnv, err)
		}
		t.Skipf("the clients phase cannot run here: %v", err)
	}
}

// TestBenchClients runs the clients phase for real (node, playwright-core, the SDK, real
// Chromium) with one lifecycle per scenario: every row of its group has a value and
// nothing is left behind. It asserts no speed.
func TestBenchClients(t *testing.T) {
	chrometest.Chrome(t)
	benchNeedClients(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "PERFORMANCE.md")
	var stdout bytes.Buffer
	raw := filepath.Join(tmp, "clients.json")
	args := []string{"--quick", "--phases", "clients", "--write", "--out", out, "--tmp-dir", tmp, "--clients-pace", "200ms",
		"--clients-json", raw}
	if err := Run(t.Context(), args, &stdout, t.Output(), "test"); err != nil {
		t.Fatalf("browserd bench %s: %v; stdout:\n%s", strings.Join(args, " "), err, stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rawData, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := benchParseClients(rawData)
	if err != nil || len(res.runs) != len(benchClientsScenarios) {
		t.Errorf("--clients-json wrote %d scenarios, %v; want all %d", len(res.runs), err, len(benchClientsScenarios))
	}
	for _, f := range res.failures { // what a user would have seen fail
		t.Errorf("lifecycle failed: %s at %s: %s", f.Scenario, f.Step, f.Error)
	}
	rows := 0
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "### ") {
			in = line == "### "+benchClientsGroup
			continue
		}
		cells := strings.Split(line, " | ")
		if !in || len(cells) != 5 || strings.HasPrefix(line, "| metric") || strings.HasPrefix(line, "| ---") {
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
	if want := 21 + 2*len(benchClientsScenarios); rows != want {
		t.Errorf("report has %d rows in %q; want %d:\n%s", rows, benchClientsGroup, want, data)
	}
	for _, p := range chrometest.Processes(t, tmp) {
		t.Errorf("process left behind: %s", p)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "PERFORMANCE.md" && e.Name() != "clients.json" {
			t.Errorf("left in the temp dir: %s", e.Name())
		}
	}
}
