package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The clients phase (issue #16, item 5) times lifecycles the way users run them: the
// official SDK (@browserbasehq/sdk) and playwright-core's connectOverCDP, from the compat
// suite's pinned npm packages, driven by compat/bench-clients.mjs. Go starts the server, the
// pages and the upstream proxy, runs the script with node and reads its JSON.

// benchClientsScript is the script, relative to the compat dir.
const benchClientsScript = "bench-clients.mjs"

// benchClientsScenario is one way of running lifecycles; the names are the script's.
type benchClientsScenario struct {
	name, label string
	bare        bool // bare Chromium launched by Playwright, not a browserd session
}

// benchClientsScenarios are the script's scenarios, in the order of the report.
var benchClientsScenarios = []benchClientsScenario{
	{name: "defaults-b2b", label: "defaults (recording on), back-to-back"},
	{name: "defaults-paced", label: "defaults (recording on), paced"},
	{name: "norec-b2b", label: "recordSession false, back-to-back"},
	{name: "norec-paced", label: "recordSession false, paced"},
	{name: "ctx-proxy-b2b", label: "context (persist false) + proxy, back-to-back"},
	{name: "ctx-proxy-paced", label: "context (persist false) + proxy, paced"},
	{name: "ctx-persist-proxy-paced", label: "context (persist true) + proxy, paced"},
	{name: "bare-b2b", label: "bare Chromium (Playwright launch), back-to-back", bare: true},
}

// The steps of one lifecycle, as the script names them: a session's and a bare browser's.
var (
	benchClientsSteps = []string{"create", "connect", "firstGoto", "nextGoto", "close", "release", "total"}
	benchBareSteps    = []string{"launch", "newPage", "firstGoto", "nextGoto", "close", "total"}
)

// benchClientsOutput is the script's answer: per scenario, every lifecycle's steps in ms.
type benchClientsOutput struct {
	Clients struct {
		Node       string `json:"node"`
		Playwright string `json:"playwright"`
		SDK        string `json:"sdk"`
	} `json:"clients"`
	Scenarios []struct {
		Name string               `json:"name"`
		Runs []map[string]float64 `json:"runs"`
		CPU  []float64            `json:"cpu"` // per back-to-back block: the machine's CPU-s per lifecycle
	} `json:"scenarios"`
	Failures []benchClientsFailure `json:"failures"`
}

// benchClientsFailure is a lifecycle that failed as a user would see it fail: the step and
// the first line of the client's error. It is left out of the runs.
type benchClientsFailure struct {
	Scenario string `json:"scenario"`
	Step     string `json:"step"`
	Error    string `json:"error"`
}

// benchClientsResult is what the phase measured.
type benchClientsResult struct {
	node, playwright, sdk string
	runs                  map[string][]map[string]float64 // scenario → lifecycles → step → ms
	cpu                   map[string][]float64            // scenario → back-to-back blocks → the machine's CPU-s per lifecycle
	failures              []benchClientsFailure
	n, rounds             int
	pace                  time.Duration
	cores                 int   // of the machine, for the back-to-back floor
	proxied               int64 // requests and tunnels through the upstream proxy
}

// benchParseClients decodes and checks the script's JSON: known scenarios once each, at
// least one lifecycle each, exactly the scenario's steps, each a duration in ms.
func benchParseClients(data []byte) (benchClientsResult, error) {
	var out benchClientsOutput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return benchClientsResult{}, fmt.Errorf("clients JSON: %w", err)
	}
	if dec.More() {
		return benchClientsResult{}, errors.New("clients JSON: more than one value")
	}
	res := benchClientsResult{node: out.Clients.Node, playwright: out.Clients.Playwright, sdk: out.Clients.SDK,
		runs: map[string][]map[string]float64{}, cpu: map[string][]float64{}}
	for _, v := range []string{res.node, res.playwright, res.sdk} {
		if v == "" || len(v) > 64 {
			return benchClientsResult{}, fmt.Errorf("clients JSON: bad client version %q", v)
		}
	}
	for _, s := range out.Scenarios {
		i := benchClientsIndex(s.Name)
		if i < 0 {
			return benchClientsResult{}, fmt.Errorf("clients JSON: unknown scenario %q", s.Name)
		}
		if _, dup := res.runs[s.Name]; dup {
			return benchClientsResult{}, fmt.Errorf("clients JSON: scenario %q twice", s.Name)
		}
		if len(s.Runs) == 0 {
			return benchClientsResult{}, fmt.Errorf("clients JSON: scenario %q has no lifecycles", s.Name)
		}
		steps := benchClientsSteps
		if benchClientsScenarios[i].bare {
			steps = benchBareSteps
		}
		for k, run := range s.Runs {
			if len(run) != len(steps) {
				return benchClientsResult{}, fmt.Errorf("clients JSON: %s lifecycle %d has steps %v; want %v", s.Name, k, benchKeys(run), steps)
			}
			for _, st := range steps {
				v, ok := run[st]
				if !ok || v < 0 || v > 1e7 || math.IsNaN(v) {
					return benchClientsResult{}, fmt.Errorf("clients JSON: %s lifecycle %d: step %s is %v, %v", s.Name, k, st, v, ok)
				}
			}
		}
		if strings.HasSuffix(s.Name, "-paced") && len(s.CPU) != 0 {
			return benchClientsResult{}, fmt.Errorf("clients JSON: paced scenario %q has CPU figures", s.Name)
		}
		for _, v := range s.CPU {
			if v < 0 || v > 1e4 || math.IsNaN(v) {
				return benchClientsResult{}, fmt.Errorf("clients JSON: %s: CPU per lifecycle %v", s.Name, v)
			}
		}
		res.runs[s.Name] = s.Runs
		res.cpu[s.Name] = s.CPU
	}
	if len(res.runs) == 0 {
		return benchClientsResult{}, errors.New("clients JSON: no scenarios")
	}
	for _, f := range out.Failures {
		i := benchClientsIndex(f.Scenario)
		if _, ran := res.runs[f.Scenario]; i < 0 || !ran {
			return benchClientsResult{}, fmt.Errorf("clients JSON: a failure in scenario %q, which did not run", f.Scenario)
		}
		steps := benchClientsSteps
		if benchClientsScenarios[i].bare {
			steps = benchBareSteps
		}
		if f.Step == "total" || (!slices.Contains(steps, f.Step) && f.Step != "check" && f.Step != "unknown") {
			return benchClientsResult{}, fmt.Errorf("clients JSON: a failure of %s at unknown step %q", f.Scenario, f.Step)
		}
		if f.Error == "" || len(f.Error) > 1000 {
			return benchClientsResult{}, fmt.Errorf("clients JSON: a failure of %s without an error or with %d bytes of it", f.Scenario, len(f.Error))
		}
	}
	res.failures = out.Failures
	return res, nil
}

func benchClientsIndex(name string) int {
	for i, s := range benchClientsScenarios {
		if s.name == name {
			return i
		}
	}
	return -1
}

func benchKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// pct returns the q-quantile (nearest rank) in ms of a scenario's step over every lifecycle
// of every round; NaN when the scenario did not run.
//
// The step benchOneGoto is derived: the lifecycle as issue 16 defines it, with one goto
// (create → connect → goto → close → release; bare: launch → newPage → goto → close), the
// sum of those steps of each lifecycle.
func (c *benchClientsResult) pct(scenario, step string, q float64) float64 {
	var d []time.Duration
	for _, run := range c.runs[scenario] {
		v, ok := run[step]
		if step == benchOneGoto {
			v, ok = benchOneGotoOf(run)
		}
		if ok {
			d = append(d, time.Duration(v*float64(time.Millisecond)))
		}
	}
	return benchPercentile(d, q, time.Millisecond)
}

// benchOneGoto names the derived step of pct: a lifecycle with one goto.
const benchOneGoto = "oneGoto"

// benchOneGotoOf sums the steps of a lifecycle with one goto; ok is false when one of
// them is missing.
func benchOneGotoOf(run map[string]float64) (float64, bool) {
	steps := []string{"create", "connect", "firstGoto", "close", "release"}
	if _, bare := run["launch"]; bare {
		steps = []string{"launch", "newPage", "firstGoto", "close"}
	}
	sum := 0.0
	for _, st := range steps {
		v, ok := run[st]
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

// benchClientsTools finds node, the compat dir and its npm packages, or says what to install.
func benchClientsTools(cfg benchConfig) (node, dir string, err error) {
	node, err = exec.LookPath(cfg.node)
	if err != nil {
		return "", "", fmt.Errorf("the clients phase runs playwright-core and the SDK with Node.js (20 or later): %w", err)
	}
	dir = cfg.compatDir
	if dir == "" {
		if dir, err = benchFindCompat(); err != nil {
			return "", "", err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil { // node runs in it, with the script's path
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(dir, benchClientsScript)); err != nil {
		return "", "", fmt.Errorf("--compat-dir %s: %w", dir, err)
	}
	for _, pkg := range []string{"playwright-core", "@browserbasehq/sdk"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			return "", "", fmt.Errorf("the clients phase needs the compat suite's pinned npm packages, and %s is not installed in %s: "+
				"run `npm ci --prefix %s` first", pkg, filepath.Join(dir, "node_modules"), dir)
		}
	}
	return node, dir, nil
}

// benchFindCompat looks for compat/bench-clients.mjs in the working directory and its
// parents (the bench runs from the repo or somewhere in it).
func benchFindCompat() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "compat", benchClientsScript)); err == nil {
			return filepath.Join(d, "compat"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no compat/%s in %s or its parents; run the bench in the browserd repo or pass --compat-dir", benchClientsScript, wd)
		}
	}
}

// benchPlaywrightArgs returns the server's Chromium flags without those Playwright's
// launch sets itself (or refuses): the DevTools endpoint, the profile, headless, and the
// first URL.
func benchPlaywrightArgs(args []string) []string {
	var out []string
	for _, a := range args {
		switch {
		case !strings.HasPrefix(a, "-"),
			strings.HasPrefix(a, "--remote-debugging-"),
			strings.HasPrefix(a, "--user-data-dir="),
			a == "--headless", strings.HasPrefix(a, "--headless="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// benchClientsConfig is the script's stdin.
type benchClientsConfig struct {
	BaseURL      string   `json:"baseURL"`
	APIKey       string   `json:"apiKey"`
	ProjectID    string   `json:"projectId"`
	MetricsURL   string   `json:"metricsURL"`
	MetricsToken string   `json:"metricsToken"`
	PoolSize     int      `json:"poolSize"`
	Pages        []string `json:"pages"`
	Proxy        string   `json:"proxy"`
	N            int      `json:"n"`
	Rounds       int      `json:"rounds"`
	PaceMS       int64    `json:"paceMs"`
	Chrome       struct {
		Path string   `json:"path"`
		Args []string `json:"args"`
	} `json:"chrome"`
}

// clientsPhase runs compat/bench-clients.mjs against the bench's server: every scenario,
// --clients-rounds rounds of --clients-n lifecycles each; back-to-back scenarios in blocks
// of their own, the paced ones interleaved in one block, --clients-pace apart.
func (r *benchRun) clientsPhase(ctx context.Context) error {
	node, dir, err := benchClientsTools(r.cfg)
	if err != nil {
		return err
	}
	up, err := startBenchUpstream()
	if err != nil {
		return err
	}
	defer up.close()
	tmp := filepath.Join(r.tmp, "clients")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	in := benchClientsConfig{BaseURL: r.srv.base, APIKey: r.srv.key, ProjectID: r.srv.projectID,
		MetricsURL: r.srv.base + "/metrics", MetricsToken: r.srv.metrics, PoolSize: r.srv.poolSize,
		Pages: []string{r.pages.base + "/site/first", r.pages.base + "/site/next"}, Proxy: up.url,
		N: r.cfg.clientsN, Rounds: r.cfg.clientsRounds, PaceMS: r.cfg.clientsPace.Milliseconds()}
	in.Chrome.Path, in.Chrome.Args = r.bare.path, benchPlaywrightArgs(r.bare.args)
	stdin, err := json.Marshal(in)
	if err != nil {
		return err
	}
	site := r.pages.site.counts()
	var stdout bytes.Buffer
	var stderr benchTail
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, benchClientsScript))
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, io.MultiWriter(r.log, &stderr)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp) // Playwright's profiles of the bare browsers
	// On cancel, SIGTERM lets Playwright close the browsers it launched before node exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("node %s: %w; its last output: %s", benchClientsScript, err, stderr.String())
	}
	res, err := benchParseClients(stdout.Bytes())
	if err != nil {
		return err
	}
	if r.cfg.clientsJSON != "" {
		if err := os.WriteFile(r.cfg.clientsJSON, stdout.Bytes(), 0o644); err != nil {
			return err
		}
	}
	res.n, res.rounds, res.pace, res.cores = r.cfg.clientsN, r.cfg.clientsRounds, r.cfg.clientsPace, runtime.NumCPU()
	res.proxied = up.requests.Load() + up.tunnels.Load()
	r.clients = res
	// The numbers mean something only if the pages loaded whole and the proxy scenarios
	// went through the upstream.
	var lifecycles, proxied int64
	for name, runs := range res.runs {
		lifecycles += int64(len(runs))
		if strings.Contains(name, "proxy") {
			proxied += int64(len(runs))
		}
	}
	got := r.pages.site.counts()
	for i, what := range []string{"pages", "scripts", "images"} {
		if want := 2 * lifecycles; got[i]-site[i] < want {
			return fmt.Errorf("the site served %d %s for %d lifecycles; want at least %d", got[i]-site[i], what, lifecycles, want)
		}
	}
	if res.proxied < proxied { // a tunnel may carry every request of a lifecycle
		return fmt.Errorf("the upstream proxy forwarded %d requests and tunnels for %d proxied lifecycles", res.proxied, proxied)
	}
	r.logf("clients: %d lifecycles; the upstream proxy forwarded %d requests and tunnels", lifecycles, res.proxied)
	return nil
}

// benchTail keeps the last bytes written to it, for an error message.
type benchTail struct{ b []byte }

const benchTailMax = 2048

func (t *benchTail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > benchTailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-benchTailMax:]...)
	}
	return len(p), nil
}

func (t *benchTail) String() string { return strings.TrimSpace(string(t.b)) }
