package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The reliability run (docs/RELIABILITY.md) drives the real binary through the failures
// the issue lists: kill -9 under load, many create/release cycles, many concurrent API
// clients, a Chromium crash storm, a busy store and a full disk. It takes minutes and
// starts dozens of browsers, so the normal suite skips it:
//
//	BROWSERD_RELIABILITY=1 BROWSERD_REQUIRE_CHROME=1 go test -count=1 -timeout 30m \
//	    -run TestReliabilityRun -v ./internal/server/
//
// BROWSERD_RELIABILITY_CYCLES sets the number of create/release cycles (default 1000),
// BROWSERD_RELIABILITY_CLIENTS the number of concurrent API clients (default 200) and
// BROWSERD_RELIABILITY_OUT a file the results are written to as Markdown tables.
// The disk-full part needs root (it mounts a 64 MiB tmpfs) and is skipped otherwise.

// relResults collects the numbers of the run, by part, in the order they were taken.
type relResults struct {
	mu    sync.Mutex
	parts []string
	rows  map[string][][3]string // part → metric, value, expected
}

func (r *relResults) add(part, metric, value, want string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rows == nil {
		r.rows = map[string][][3]string{}
	}
	if !slices.Contains(r.parts, part) {
		r.parts = append(r.parts, part)
	}
	r.rows[part] = append(r.rows[part], [3]string{metric, value, want})
}

func (r *relResults) markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, p := range r.parts {
		fmt.Fprintf(&b, "### %s\n\n| metric | value | expected |\n| --- | --- | --- |\n", p)
		for _, row := range r.rows[p] {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", row[0], row[1], row[2])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func TestReliabilityRun(t *testing.T) {
	if os.Getenv("BROWSERD_RELIABILITY") != "1" {
		t.Skip("set BROWSERD_RELIABILITY=1 to run the reliability run (minutes, dozens of browsers)")
	}
	bin := buildBinary(t)
	res := &relResults{}
	start := time.Now()
	res.add("run", "started", start.UTC().Format("2006-01-02 15:04 UTC"), "")
	res.add("run", "load average at start", loadavg(), "")
	defer func() {
		res.add("run", "load average at end", loadavg(), "")
		res.add("run", "duration", time.Since(start).Round(time.Second).String(), "")
		md := res.markdown()
		t.Log("\n" + md)
		if out := os.Getenv("BROWSERD_RELIABILITY_OUT"); out != "" {
			if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
				t.Error(err)
			}
		}
	}()
	// Each part runs alone: they share two cores with whatever else the machine does.
	t.Run("kill9", func(t *testing.T) { relKill9(t, bin, res) })
	t.Run("cycles", func(t *testing.T) { relCycles(t, bin, res, envInt("BROWSERD_RELIABILITY_CYCLES", 1000)) })
	t.Run("clients", func(t *testing.T) { relClients(t, bin, res, envInt("BROWSERD_RELIABILITY_CLIENTS", 200)) })
	t.Run("crashstorm", func(t *testing.T) { relCrashStorm(t, bin, res) })
	t.Run("storebusy", func(t *testing.T) { relStoreBusy(t, bin, res) })
	t.Run("diskfull", func(t *testing.T) { relDiskFull(t, bin, res) })
}

// relDo does one API request without failing the test (it may run in a goroutine).
func relDo(ctx context.Context, hc *http.Client, base, method, path, body string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-BB-API-Key", testAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// relID returns the id in an API answer, or "" (idOf fails the test: not from a goroutine).
func relID(body []byte) string {
	if m := idField.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// createN creates n sessions with body, par at a time, and returns their ids.
func createN(t *testing.T, base string, n, par int, body map[string]any) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var s apiSession
			callJSON(t, base, "POST", "/v1/sessions", testAPIKey, body, http.StatusCreated, &s)
			ids[i] = s.ID
		})
	}
	wg.Wait()
	return ids
}

// relProcs counts the live processes whose command line names dir, by program name
// (/proc/PID/comm: chromium, chrome_crashpad, bwrap, the sandbox init…) and in all
// ("total"), leaving out the process except (the server).
func relProcs(dir string, except int) map[string]int {
	counts := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except || zombie(pid) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		// By the kernel's name of the program: Chromium rewrites the argv of its helpers.
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		counts[strings.TrimSpace(string(comm))]++
		counts["total"]++
	}
	return counts
}

// zombie reports whether pid is a zombie (or gone).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

func fmtCounts(c map[string]int) string {
	if c["total"] == 0 {
		return "0"
	}
	var parts []string
	for k, v := range c {
		if k != "total" {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d (%s)", c["total"], strings.Join(parts, ", "))
}

// entries counts the entries of dir (0 when it does not exist).
func entries(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

// sandboxRootEntries counts the entries of the default sandbox root that belong to the
// server pid with data dir dataDir: its copy of the sandbox init (init-<pid>-<n>) and the
// dir of its browsers (<hash of the run dir>, used when the data dir is not searchable by
// the browsers' uids). Other servers on the machine share the root: their entries do not count.
func sandboxRootEntries(pid int, dataDir string) int {
	sum := sha256.Sum256([]byte(filepath.Join(dataDir, "run")))
	mine := hex.EncodeToString(sum[:8])
	n := 0
	es, _ := os.ReadDir("/var/tmp/browserd")
	for _, e := range es {
		if e.Name() == mine || strings.HasPrefix(e.Name(), fmt.Sprintf("init-%d-", pid)) {
			n++
		}
	}
	return n
}

func fdCount(pid int) int { return entries(fmt.Sprintf("/proc/%d/fd", pid)) }

// goroutines reads go_goroutines from the server's /metrics.
func goroutines(t *testing.T, base string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testMetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics = %d without go_goroutines", resp.StatusCode)
	return 0
}

// pct returns the nearest-rank p-th percentile of ds (sorted in place).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// relKill9 kills the server with SIGKILL while 20 sessions live (3 of them navigating
// through CDP, 8 clients listing sessions), then restarts it on the same data dir.
func relKill9(t *testing.T, bin string, res *relResults) {
	const part = "kill -9 under load (20 sessions)"
	dir := filepath.Join(t.TempDir(), "data")
	runDir := filepath.Join(dir, "run")
	p1 := startProcess(t, bin, dir, "--pool-size", "0", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	t0 := time.Now()
	ids := createN(t, p1.URL, 20, 2, map[string]any{"keepAlive": true})
	res.add(part, "20 keepAlive creates (2 at a time)", time.Since(t0).Round(time.Millisecond).String(), "")
	page := pageServer(t, "reliability")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var navs, navErrs, lists atomic.Int64
	var wg sync.WaitGroup
	for _, id := range ids[:3] {
		var s apiSession
		callJSON(t, p1.URL, "GET", "/v1/sessions/"+id, testAPIKey, nil, 200, &s)
		c := mustDial(t, ctx, s.ConnectURL)
		sid, err := c.attachPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if title, err := c.gotoAndTitle(ctx, sid, page.URL); err != nil || title != "reliability" {
			t.Fatalf("navigate: %q, %v", title, err)
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := c.gotoAndTitle(ctx, sid, page.URL+"/?"+strconv.Itoa(rand.Int())); err != nil {
					navErrs.Add(1)
					return // the server is gone
				}
				navs.Add(1)
			}
		})
	}
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, _, _, err := relDo(ctx, http.DefaultClient, p1.URL, "GET", "/v1/sessions", ""); err != nil {
					return
				}
				lists.Add(1)
			}
		})
	}
	time.Sleep(3 * time.Second) // under load
	before := relProcs(dir, p1.cmd.Process.Pid)
	res.add(part, "processes of the data dir before the kill", fmtCounts(before), "")
	res.add(part, "load while killed: CDP navigations / session lists in the 3 s before", fmt.Sprintf("%d / %d", navs.Load(), lists.Load()), "")
	killed := time.Now()
	if err := p1.signal(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("server killed with SIGKILL exited cleanly")
	}
	cancel()
	wg.Wait()
	time.Sleep(300*time.Millisecond - time.Since(killed))
	after300 := relProcs(dir, 0)
	res.add(part, "processes left 300 ms after the kill", fmtCounts(after300), "")
	time.Sleep(2*time.Second - time.Since(killed))
	after2s := relProcs(dir, 0)
	res.add(part, "processes left 2 s after the kill (before restart)", fmtCounts(after2s), "0")
	res.add(part, "run/ entries left by the dead server", strconv.Itoa(entries(runDir)), "")
	if after2s["total"] != 0 {
		t.Errorf("processes of the data dir outlive the killed server by 2 s: %s", fmtCounts(after2s))
		for _, p := range relProcList(dir) {
			t.Logf("  %s", p)
		}
	}

	restart := time.Now()
	p2 := startProcess(t, bin, dir, "--pool-size", "0", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	res.add(part, "restart → listening", time.Since(restart).Round(time.Millisecond).String(), "")
	var errored, withEnd int
	var others []string
	for _, id := range ids {
		var s apiSession
		callJSON(t, p2.URL, "GET", "/v1/sessions/"+id, testAPIKey, nil, 200, &s)
		if s.Status == "ERROR" {
			errored++
		} else {
			others = append(others, id+" "+s.Status)
		}
		if s.EndedAt != "" {
			withEnd++
		}
	}
	res.add(part, "sessions ERROR after restart", fmt.Sprintf("%d of 20", errored), "20 of 20")
	res.add(part, "sessions with endedAt after restart", fmt.Sprintf("%d of 20", withEnd), "20 of 20")
	if errored != 20 || withEnd != 20 {
		t.Errorf("after restart %d ERROR, %d with endedAt; not ERROR: %v", errored, withEnd, others)
	}
	procs := relProcs(dir, p2.cmd.Process.Pid)
	res.add(part, "processes of the data dir after restart", fmtCounts(procs), "0")
	res.add(part, "run/ and spool/ entries after restart", fmt.Sprintf("%d / %d", entries(runDir), entries(filepath.Join(dir, "spool"))), "0 / 0")
	if procs["total"] != 0 || entries(runDir) != 0 || entries(filepath.Join(dir, "spool")) != 0 {
		t.Errorf("after restart: processes %s, run/ %d, spool/ %d; want none", fmtCounts(procs), entries(runDir), entries(filepath.Join(dir, "spool")))
	}
	var live []apiSession
	callJSON(t, p2.URL, "GET", "/v1/sessions?status=RUNNING", testAPIKey, nil, 200, &live)
	res.add(part, "RUNNING sessions listed after restart", strconv.Itoa(len(live)), "0")
	if err := p2.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("restarted server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}

// relProcList lists the processes whose command line names dir, for failure messages.
func relProcList(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || zombie(pid) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			line := strings.ReplaceAll(string(cmdline), "\x00", " ")
			out = append(out, e.Name()+" "+line[:min(len(line), 160)])
		}
	}
	return out
}

// relSnapshot is what a leak would show in: the server's processes, fds, files and
// goroutines.
type relSnapshot struct {
	procs                 map[string]int
	fds, run, spool, vtmp int
	goroutines, poolAlive int
}

func snapshot(t *testing.T, p *procServer) relSnapshot {
	return relSnapshot{
		procs: relProcs(p.DataDir, p.cmd.Process.Pid), fds: fdCount(p.cmd.Process.Pid),
		run: entries(filepath.Join(p.DataDir, "run")), spool: entries(filepath.Join(p.DataDir, "spool")),
		vtmp: sandboxRootEntries(p.cmd.Process.Pid, p.DataDir), goroutines: goroutines(t, p.URL), poolAlive: len(browserPIDs(t, p.DataDir)),
	}
}

// settle waits until the warm pool holds want browsers and the goroutines stop
// falling (closing connections, finished ends), then takes a snapshot.
func settle(t *testing.T, p *procServer, want int, floor int) relSnapshot {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := snapshot(t, p)
		if (s.poolAlive == want && (floor < 0 || s.goroutines <= floor)) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// relCycles creates and releases n sessions (2 clients at a time, warm pool of 2) and
// compares what the server holds before and after.
func relCycles(t *testing.T, bin string, res *relResults, n int) {
	part := fmt.Sprintf("%d create/release cycles", n)
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dir, "--pool-size", "2", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	ctx := t.Context()
	cycle := func() (time.Duration, error) {
		t0 := time.Now()
		code, _, b, err := relDo(ctx, http.DefaultClient, p.URL, "POST", "/v1/sessions", "{}")
		if err != nil || code != http.StatusCreated {
			return 0, fmt.Errorf("create = %d %s %v", code, b, err)
		}
		id := relID(b)
		code, _, b, err = relDo(ctx, http.DefaultClient, p.URL, "POST", "/v1/sessions/"+id, `{"status":"REQUEST_RELEASE"}`)
		if err != nil || code != http.StatusOK {
			return 0, fmt.Errorf("release = %d %s %v", code, b, err)
		}
		return time.Since(t0), nil
	}
	for range 10 { // warm up: lazily built things exist before the baseline
		if _, err := cycle(); err != nil {
			t.Fatal(err)
		}
	}
	before := settle(t, p, 2, -1)

	const workers = 2
	var mu sync.Mutex
	var lat []time.Duration
	var failures []string
	next := atomic.Int64{}
	t0 := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				d, err := cycle()
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	after := settle(t, p, 2, before.goroutines)

	res.add(part, "time (2 clients, --pool-size 2)", fmt.Sprintf("%s (%.1f cycles/s)", took.Round(time.Second), float64(n)/took.Seconds()), "")
	res.add(part, "cycle (create → release) p50 / p99 / max", fmt.Sprintf("%s / %s / %s", ms(pct(lat, 50)), ms(pct(lat, 99)), ms(pct(lat, 100))), "")
	res.add(part, "failed cycles", strconv.Itoa(len(failures)), "0")
	if len(failures) > 0 {
		t.Errorf("%d of %d cycles failed, first: %s", len(failures), n, failures[0])
	}
	row := func(metric string, b, a int) {
		res.add(part, metric+" before → after", fmt.Sprintf("%d → %d", b, a), "equal")
		if a > b {
			t.Errorf("%s grew over %d cycles: %d → %d", metric, n, b, a)
		}
	}
	row("warm browsers (main Chromium processes)", before.poolAlive, after.poolAlive)
	row("bwrap processes", before.procs["bwrap"], after.procs["bwrap"])
	res.add(part, "all processes of the data dir before → after (helpers come and go)", fmt.Sprintf("%d → %d", before.procs["total"], after.procs["total"]), "about equal")
	row("server open fds", before.fds, after.fds)
	row("run/ entries", before.run, after.run)
	row("spool/ entries", before.spool, after.spool)
	row("/var/tmp/browserd entries of this server", before.vtmp, after.vtmp)
	row("goroutines (go_goroutines)", before.goroutines, after.goroutines)
	var all []apiSession
	callJSON(t, p.URL, "GET", "/v1/sessions", testAPIKey, nil, 200, &all)
	completed := 0
	for _, s := range all {
		if s.Status == "COMPLETED" && s.EndedAt != "" {
			completed++
		}
	}
	res.add(part, "sessions COMPLETED with endedAt", fmt.Sprintf("%d of %d", completed, len(all)), "all")
	if completed != len(all) {
		t.Errorf("%d of %d sessions COMPLETED", completed, len(all))
	}
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}
