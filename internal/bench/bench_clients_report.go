package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// benchClientsGroup is the report group of the clients phase.
const benchClientsGroup = "lifecycle as users see it (Playwright + SDK)"

// clientsRows are the clients phase's report rows: the issue #16 targets, then every
// scenario's steps at p50 and p90 (over every lifecycle of every round).
func (c *benchClientsResult) rows() []benchRow {
	const g = benchClientsGroup
	p := c.pct
	ratio := func(metric string, a, b float64, target float64) benchRow {
		row := benchRow{group: g, metric: metric, vals: []float64{a / b}, unit: "×", prec: 2, note: "#16"}
		if target > 0 {
			row.le, row.target = true, target
		}
		return row
	}
	msRow := func(metric string, v float64, target float64) benchRow {
		row := benchRow{group: g, metric: metric, vals: []float64{v}, unit: "ms", prec: 1, note: "#16"}
		if target > 0 {
			row.le, row.target = true, target
		}
		return row
	}
	setup := "not run"
	if c.runs != nil {
		setup = fmt.Sprintf("playwright-core %s, @browserbasehq/sdk %s, node %s; %d rounds × %d lifecycles per scenario, paced ones %s apart",
			c.playwright, c.sdk, c.node, c.rounds, c.n, c.pace)
	}
	failed := math.NaN()
	if c.runs != nil {
		failed = float64(len(c.failures))
	}
	var failures []string
	perScenario := map[string]int{}
	for _, f := range c.failures {
		perScenario[f.Scenario]++
		if len(failures) < 3 {
			failures = append(failures, fmt.Sprintf("%s at %s: %s", f.Scenario, f.Step, f.Error))
		}
	}
	if n := len(c.failures) - len(failures); n > 0 {
		failures = append(failures, fmt.Sprintf("and %d more", n))
	}
	if failures == nil {
		failures = []string{"none"}
	}
	rows := []benchRow{
		{group: g, metric: "clients and samples", text: setup},
		{group: g, metric: "failed lifecycles (left out of the numbers)", vals: []float64{failed}, prec: 0, le: true, target: 0},
		{group: g, metric: "failures", text: strings.Join(failures, "; ")},
		msRow("lifecycle p50 (create → connect → goto → close → release), defaults, back-to-back", p("defaults-b2b", benchOneGoto, 0.5), 120),
		msRow("lifecycle p90 (create → connect → goto → close → release), defaults, back-to-back", p("defaults-b2b", benchOneGoto, 0.9), 250),
		ratio("lifecycle p50 defaults back-to-back / bare Chromium p50 (launch → newPage → goto → close)",
			p("defaults-b2b", benchOneGoto, 0.5), p("bare-b2b", benchOneGoto, 0.5), 0.35),
		msRow("lifecycle p50 (one goto), defaults, paced", p("defaults-paced", benchOneGoto, 0.5), 0),
		msRow("lifecycle p90 (one goto), defaults, paced", p("defaults-paced", benchOneGoto, 0.9), 0),
		ratio("lifecycle p50 (one goto) defaults paced / bare Chromium p50",
			p("defaults-paced", benchOneGoto, 0.5), p("bare-b2b", benchOneGoto, 0.5), 0),
		msRow("whole lifecycle p50 (both gotos, as timed), defaults, back-to-back", p("defaults-b2b", "total", 0.5), 0),
	}
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}} {
		for _, step := range []struct{ key, name string }{{"firstGoto", "first goto"}, {"nextGoto", "next goto"}} {
			rows = append(rows, ratio(fmt.Sprintf("%s %s, recording on / off (paced)", step.name, q.name),
				p("defaults-paced", step.key, q.q), p("norec-paced", step.key, q.q), 1.1))
		}
	}
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}} {
		rows = append(rows, benchRow{group: g, metric: fmt.Sprintf("first / next goto %s, recording on / off (back-to-back)", q.name),
			text: fmt.Sprintf("%s / %s ×", benchRatioText(p("defaults-b2b", "firstGoto", q.q), p("norec-b2b", "firstGoto", q.q)),
				benchRatioText(p("defaults-b2b", "nextGoto", q.q), p("norec-b2b", "nextGoto", q.q)))})
	}
	rows = append(rows,
		ratio("create p50, context (persist false) + proxy / plain warm create (paced)",
			p("ctx-proxy-paced", "create", 0.5), p("defaults-paced", "create", 0.5), 2),
		ratio("create p50, context (persist true) + proxy / plain warm create (paced)",
			p("ctx-persist-proxy-paced", "create", 0.5), p("defaults-paced", "create", 0.5), 0),
		benchRow{group: g, metric: "requests and tunnels through the upstream proxy", vals: []float64{float64(c.proxied)}, prec: 0},
	)
	// What one back-to-back lifecycle costs the whole machine (refills included), and the
	// shortest lifecycle its cores allow at that cost, one after another without pauses.
	cpu := make([]string, 0, 4)
	floor := make([]string, 0, 4)
	for _, s := range []struct{ name, label string }{{"defaults-b2b", "defaults"}, {"norec-b2b", "recordSession false"},
		{"ctx-proxy-b2b", "context + proxy"}, {"bare-b2b", "bare"}} {
		v := benchMedian(c.cpu[s.name])
		cpu = append(cpu, fmt.Sprintf("%s %s", s.label, benchFixed(v, 3)))
		floor = append(floor, fmt.Sprintf("%s %s", s.label, benchFixed(1000*v/float64(c.cores), 0)))
	}
	rows = append(rows,
		benchRow{group: g, metric: "machine CPU per back-to-back lifecycle, refills included (CPU-s, median of blocks)", text: strings.Join(cpu, " / ")},
		benchRow{group: g, metric: fmt.Sprintf("back-to-back lifecycle floor: that CPU over %d cores (ms)", c.cores), text: strings.Join(floor, " / ")},
	)
	for _, s := range benchClientsScenarios {
		steps, names := benchClientsSteps, "create / connect / first goto / next goto / close / release / lifecycle"
		if s.bare {
			steps, names = benchBareSteps, "launch / newPage / first goto / next goto / close / lifecycle"
		}
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p90", 0.9}} {
			vals := make([]string, len(steps))
			for i, st := range steps {
				vals[i] = benchMsText(p(s.name, st, q.q))
			}
			note := fmt.Sprintf("n=%d", len(c.runs[s.name]))
			if f := perScenario[s.name]; f > 0 {
				note += fmt.Sprintf(", %d failed", f)
			}
			rows = append(rows, benchRow{group: g, metric: fmt.Sprintf("%s %s: %s", s.label, q.name, names),
				text: strings.Join(vals, " / ") + " ms", note: note})
		}
	}
	return rows
}

// benchFixed formats v with prec decimals, or n/a.
func benchFixed(v float64, prec int) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func benchMsText(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", v)
}

func benchRatioText(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
