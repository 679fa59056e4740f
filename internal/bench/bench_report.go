package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// benchRow is one line of the report: the median of per-round values (or a text), and
// the issue #8 target it is held against, if any.
type benchRow struct {
	group, metric string
	vals          []float64
	text          string // instead of vals
	unit          string
	prec          int
	target        float64
	le, ge        bool // the target is an upper (le) or lower (ge) bound
	note          string
}

func (b benchRow) value() string {
	if b.vals == nil {
		return b.text
	}
	return b.num(benchMedian(b.vals))
}

func (b benchRow) num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	s := fmt.Sprintf("%.*f", b.prec, v)
	if b.unit != "" {
		s += " " + b.unit
	}
	return s
}

func (b benchRow) spread() string {
	if len(b.vals) < 2 {
		return ""
	}
	return fmt.Sprintf("%.*f–%.*f", b.prec, slices.Min(b.vals), b.prec, slices.Max(b.vals))
}

func (b benchRow) targetText() string {
	switch {
	case b.le:
		return "≤ " + b.num(b.target)
	case b.ge:
		return "≥ " + b.num(b.target)
	}
	return ""
}

// verdict says met or missed, and by how much.
func (b benchRow) verdict() string {
	if !b.le && !b.ge {
		return ""
	}
	v := benchMedian(b.vals)
	if math.IsNaN(v) {
		return "no value"
	}
	diff := v - b.target
	if b.ge {
		diff = -diff
	}
	pct := ""
	if b.target != 0 {
		pct = fmt.Sprintf(" (%+.0f %%)", 100*diff/b.target)
	}
	if diff <= 0 {
		return "met, " + strings.TrimPrefix(b.num(-diff), "-") + " to spare"
	}
	return "MISSED by " + b.num(diff) + pct
}

func (r *benchRun) rows() []benchRow {
	c, l, x, a, u, d := &r.create, &r.lifecycle, &r.cdp, &r.api, &r.burst, &r.density
	ms := func(g, m string, v []float64) benchRow {
		return benchRow{group: g, metric: m, vals: v, unit: "ms", prec: 1}
	}
	us := func(g, m string, v []float64) benchRow {
		return benchRow{group: g, metric: m, vals: v, unit: "µs", prec: 0}
	}
	le := func(b benchRow, t float64) benchRow { b.le, b.target = true, t; return b }
	ge := func(b benchRow, t float64) benchRow { b.ge, b.target = true, t; return b }
	one := func(v float64) []float64 { return []float64{v} }
	steps := func(st []benchSteps) string {
		var s, cn, n, e []float64
		for _, x := range st {
			s, cn = append(s, ms64(x.start)), append(cn, ms64(x.connect))
			n, e = append(n, ms64(x.navigate)), append(e, ms64(x.end))
		}
		return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", benchMedian(s), benchMedian(cn), benchMedian(n), benchMedian(e))
	}
	const gc, gl, gx, gd, ga = "create", "lifecycle", "cdp", "density", "api"
	rows := []benchRow{
		le(ms(gc, "warm create p50 (POST → 201, pool hit)", c.warm.p50), 25),
		ms(gc, "warm create p90", c.warm.p90),
		le(ms(gc, "warm create p99", c.warm.p99), 100),
		ms(gc, "cold create p50 (launch options miss the pool)", c.cold.p50),
		ms(gc, "cold create p90", c.cold.p90),
		ms(gc, "cold create p99", c.cold.p99),
		{group: gc, metric: "pool hits / misses", text: fmt.Sprintf("%d / %d", c.hits, c.misses),
			note: fmt.Sprintf("%d warm + %d cold creates per round", c.perRound, c.perRound)},

		le(ms(gl, "browserd lifecycle p50 (create → connect → goto → release)", l.browserd.p50), 120),
		ms(gl, "browserd lifecycle p99", l.browserd.p99),
		ms(gl, "bare Chromium p50 (launch → connect → goto → kill)", l.bare.p50),
		ms(gl, "bare Chromium p99", l.bare.p99),
		le(benchRow{group: gl, metric: "ratio browserd / bare (p50, per round)", vals: l.ratio, unit: "×", prec: 2}, 0.35),
		{group: gl, metric: "browserd steps: create / connect+attach / goto / release", text: steps(l.stepsBD)},
		{group: gl, metric: "bare steps: launch / connect+attach / goto / kill", text: steps(l.stepsBare)},
	}
	rows = append(rows, r.clients.rows()...)
	rows = append(rows,
		us(gx, "Runtime.evaluate direct p50", x.direct.p50),
		us(gx, "Runtime.evaluate direct p99", x.direct.p99),
		us(gx, "via TCP pass-through p50", x.tcp.p50),
		us(gx, "via TCP pass-through p99", x.tcp.p99),
		us(gx, "via gateway p50", x.gw.p50),
		us(gx, "via gateway p99", x.gw.p99),
		us(gx, "added by TCP pass-through (p50)", x.addedTCP),
		us(gx, "added by gateway (p50)", x.addedGW),
		le(benchRow{group: gx, metric: "gateway added / TCP added", vals: x.addedRatio, unit: "×", prec: 2}, 1.25),
		le(benchRow{group: gx, metric: "relay CPU per round trip (gateway − direct)", vals: x.cpuRelay, unit: "µs", prec: 1}, 40),
		us(gx, "via gateway, logSession false, p50", x.gwNoLog.p50),
		benchRow{group: gx, metric: "relay CPU per round trip, logSession false", vals: x.cpuRelayNoLog, unit: "µs", prec: 1},
		benchRow{group: gx, metric: "TCP pass-through CPU per round trip", vals: x.cpuTCP, unit: "µs", prec: 1},
		benchRow{group: gx, metric: "bench client CPU per round trip (direct)", vals: x.cpuClient, unit: "µs", prec: 1},
		benchRow{group: gx, metric: "full-page screenshot (PNG)", text: fmt.Sprintf("%s px, %.1f MB", x.shotPx, x.shotMB)},
		benchRow{group: gx, metric: "screenshot throughput direct", vals: x.shotDirect, unit: "MB/s", prec: 1},
		benchRow{group: gx, metric: "screenshot throughput via TCP pass-through", vals: x.shotTCP, unit: "MB/s", prec: 1},
		benchRow{group: gx, metric: "screenshot throughput via gateway", vals: x.shotGW, unit: "MB/s", prec: 1},
		ge(benchRow{group: gx, metric: "gateway / direct throughput", vals: x.shotRatio, unit: "%", prec: 0}, 95),
	)
	base := benchDensityLevel{}
	if len(d.levels) > 0 {
		base = d.levels[0]
	}
	top := base
	for _, lv := range d.levels {
		if lv.healthy {
			top = lv
		}
	}
	rows = append(rows,
		benchRow{group: gd, metric: "idle sessions compared with bare", text: fmt.Sprint(d.n)},
		benchRow{group: gd, metric: "PSS per session (its browser's process tree)", vals: one(base.pssPer), unit: "MiB", prec: 0},
		benchRow{group: gd, metric: "PSS per bare Chromium (same N, same page)", vals: one(d.pssBare), unit: "MiB", prec: 0},
		le(benchRow{group: gd, metric: "ratio session / bare", vals: one(base.pssPer / d.pssBare), unit: "×", prec: 2}, 1.05),
		benchRow{group: gd, metric: "PSS per session incl. server process and warm pool", vals: one(base.pssAll), unit: "MiB", prec: 0},
		benchRow{group: gd, metric: "MemAvailable drop per session / per bare browser",
			text: fmt.Sprintf("%.0f / %.0f MiB", d.memDropBD, d.memDropBare), note: "system-wide; other work on the machine shows up here"},
		ge(benchRow{group: gd, metric: "largest N healthy (all answer CDP; MemAvailable above floor)", vals: one(float64(d.largest)), prec: 0}, 100),
		benchRow{group: gd, metric: "ramp ended", text: d.stop},
		benchRow{group: gd, metric: "Runtime.evaluate p99 at the largest healthy N", vals: one(top.evalP99), unit: "ms", prec: 1},

		ge(benchRow{group: ga, metric: fmt.Sprintf("GET /v1/sessions/{id} throughput (%d clients)", a.conc), vals: a.rps, unit: "req/s", prec: 0}, 10000),
		benchRow{group: ga, metric: "baseline: bare net/http server, same answer, same clients", vals: a.baseRPS, unit: "req/s", prec: 0},
		benchRow{group: ga, metric: "browserd / baseline throughput", vals: ratios(a.rps, a.baseRPS), unit: "×", prec: 2},
		ms(ga, "GET p50", a.lat.p50),
		ms(ga, "GET p99", a.lat.p99),
		benchRow{group: ga, metric: "process CPU per GET (server + load generator)", vals: a.cpuPerReq, unit: "µs", prec: 0},
		le(ms(ga, fmt.Sprintf("GET p99 during a burst of %d creates", u.size), u.getP99), 50),
		ms(ga, "GET p50 during the burst", u.getP50),
		benchRow{group: ga, metric: "burst: first POST → last 201", vals: u.seconds, unit: "s", prec: 1},
		ms(ga, "burst: create p50", u.create.p50),
		ms(ga, "burst: create p99", u.create.p99),
		le(benchRow{group: ga, metric: "most browsers starting at once", vals: floats(u.maxStarting), prec: 0}, 2),
	)
	if r.cfg.phases == nil || r.cfg.phases["cluster"] {
		rows = append(rows, r.cluster.rows()...)
	}
	return rows
}

func ms64(d time.Duration) float64 { return float64(d) / 1e6 }

func floats(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// benchTextTable renders the rows for a terminal.
func benchTextTable(rows []benchRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	group := ""
	for _, r := range rows {
		if r.group != group {
			group = r.group
			fmt.Fprintf(w, "\n== %s\t\t\t\t\n", group)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.metric, r.value(), r.spread(), r.targetText(), r.verdict())
	}
	w.Flush()
	return b.String()
}

// markdown renders the generated part of docs/PERFORMANCE.md.
func (r *benchRun) markdown(rows []benchRow) string {
	var b strings.Builder
	m, cfg := r.machine, r.cfg
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Results\n\n")
	p("Generated by `browserd bench` on %s in %s.\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	p("Command: `browserd bench %s`\n\n", strings.Join(cfg.args, " "))
	p("Server: `browserd serve %s` in the bench's process (its defaults otherwise; the API key and data dir\n", r.srv.displayArgs())
	p("are the bench's own, and the default project's concurrency is raised to --max-sessions).\n\n")
	p("| machine | |\n| --- | --- |\n")
	p("| CPU | %d × %s |\n| RAM | %.1f GiB |\n| OS, kernel | %s, %s |\n", m.cores, m.cpu, m.ramGiB, m.os, m.kernel)
	p("| Go | %s |\n| Chromium | %s (`%s`; CDP product %s, protocol %s) |\n", m.goVersion, m.chromeVersion, m.chromePath, r.cdp.product, r.cdp.protocol)
	p("| browserd | %s %s |\n| load average at start / end | %s / %s |\n\n", r.version, m.commit, m.loadStart, m.loadEnd)
	p("Each value is the median of %d rounds (the create burst: %d; density: one run); the spread is the\n", cfg.rounds, cfg.heavyRounds)
	p("range of the per-round values. Percentiles are nearest-rank within a round, so a p99 over fewer\n")
	p("than 100 samples is that round's maximum. Every ratio compares runs of this invocation.\n\n")
	group := ""
	for _, row := range rows {
		if row.group != group {
			group = row.group
			p("\n### %s\n\n| metric | value | spread | target (#8) | verdict |\n| --- | --- | --- | --- | --- |\n", group)
		}
		metric := row.metric
		if row.note != "" {
			metric += " (" + row.note + ")"
		}
		p("| %s | %s | %s | %s | %s |\n", mdCell(metric), mdCell(row.value()), row.spread(), row.targetText(), row.verdict())
	}
	d := r.density
	if len(d.levels) > 0 {
		p("\nDensity levels (settle %s before measuring; one Runtime.evaluate per session through the gateway):\n\n", d.settle)
		p("| sessions | healthy | PSS/session | incl. server+pool | MemAvailable | evaluate p50 / p99 | start time |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, lv := range d.levels {
			h := "yes"
			if !lv.healthy {
				h = "no: " + mdCell(lv.why)
			}
			p("| %d | %s | %.0f MiB | %.0f MiB | %.0f MiB | %.1f / %.1f ms | %.1f s |\n", lv.n, h, lv.pssPer, lv.pssAll,
				lv.memAvailMiB, lv.evalP50, lv.evalP99, lv.addSeconds)
		}
		p("\n%d bare browsers started in %.1f s.\n", d.n, d.bareSeconds)
	}
	p("\nSetup: warm create and lifecycle wait for a full pool (size %d) and for the previous browser to be gone;\n", cfg.poolSize)
	p("cold creates ask for a viewport the pool was not launched with. Bare Chromium is the binary and flags of\n")
	p("a session's browser (read from /proc), with a fresh profile. The CDP round trips use one page through\n")
	p("three paths in turn: Chromium's DevTools socket, a TCP pass-through in this process, and the gateway.\n")
	p("Relay CPU is this process's CPU during the gateway loop minus during the direct loop, per round trip.\n")
	p("The API load generator runs in the same process as the server and shares its %d cores.\n", m.cores)
	p("The %s rows come from compat/bench-clients.mjs (node, the compat suite's pinned playwright-core and\n", benchClientsGroup)
	p("SDK): SDK create → connectOverCDP → goto on the context's page → goto another page in the same tab →\n")
	p("browser.close() → SDK release; each page loads a script and an image from 127.0.0.1. Back-to-back runs a\n")
	p("block of lifecycles without pauses after the pool is full; the paced scenarios run as one block, one\n")
	p("lifecycle of each in turn, --clients-pace apart, so that the machine's load weighs on each alike. The\n")
	p("proxy is an HTTP forward proxy on 127.0.0.1 in this process; bare Chromium is Playwright's launch of the\n")
	p("server's binary with its flags (those Playwright sets itself left out; Chromium keeps the last\n")
	p("--disable-features, so the server's list replaces Playwright's) → newPage → the same gotos → close.\n")
	p("Their percentiles are over every lifecycle of every round (not medians of rounds).\n")
	return b.String()
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

const (
	benchBegin = "<!-- bench:begin: generated by `browserd bench`; edit outside these markers -->"
	benchEnd   = "<!-- bench:end -->"
)

// writeBenchReport replaces the generated part of path, keeping the text around it.
func writeBenchReport(path, generated string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	before := "# Performance\n\nMeasured by `browserd bench` (internal/bench/bench*.go) against the targets of issue #8.\n\n"
	after := "\n"
	if s := string(old); s != "" {
		i, j := strings.Index(s, benchBegin), strings.Index(s, benchEnd)
		if i < 0 || j < i {
			return fmt.Errorf("%s has no %q … %q section; move it away or add the markers", path, benchBegin, benchEnd)
		}
		before, after = s[:i], s[j+len(benchEnd):]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(before+benchBegin+"\n"+generated+benchEnd+after), 0o644)
}

// ratios returns a[i]/b[i] for the rounds both have (a round with b[i] == 0 is left out).
func ratios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}
