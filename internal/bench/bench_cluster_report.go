package bench

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// benchClusterGroup is the report's group of the cluster phase.
const benchClusterGroup = "cluster (issue 18)"

// rows returns the cluster phase's rows: one line saying how to run it when it was
// skipped.
func (c *benchClusterResult) rows() []benchRow {
	g := benchClusterGroup
	if !c.ran {
		return []benchRow{{group: g, metric: "cluster phase", text: cmp.Or(c.skipped, benchClusterHowTo)}}
	}
	us := func(m string, v []float64) benchRow {
		return benchRow{group: g, metric: m, vals: v, unit: "µs", prec: 0}
	}
	var rows []benchRow
	for _, p := range benchClusterAPIPaths {
		conc := p.conc
		if conc == 0 {
			conc = c.apiConc
		}
		for _, who := range []string{"owner", "non-owner"} {
			name := p.name + " at the " + who
			pct := c.api[name]
			if pct == nil {
				pct = &benchPct{}
			}
			rows = append(rows,
				us(name+" p50", pct.p50), us(name+" p90", pct.p90), us(name+" p99", pct.p99),
				benchRow{group: g, metric: name + " throughput", vals: c.apiRPS[name], unit: "req/s", prec: 0,
					note: fmt.Sprintf("%d clients", conc)})
		}
	}
	for _, p := range benchClusterAPIPaths {
		rows = append(rows, us("added by the non-owner hop, "+p.name+" (p50)", c.added[p.name]))
	}
	rows = append(rows,
		us("CDP Runtime.evaluate over connectUrl at the owner p50", c.cdpOwner.p50),
		us("CDP at the owner p90", c.cdpOwner.p90),
		us("CDP over connectUrl at a non-owner (proxied websocket) p50", c.cdpPeer.p50),
		us("CDP at a non-owner p90", c.cdpPeer.p90),
		us("added by the non-owner hop, CDP round trip (p50)", c.cdpAdded),
	)
	for _, cr := range c.creates {
		n := fmt.Sprintf("%d node", cr.nodes)
		if cr.nodes != 1 {
			n += "s"
		}
		rows = append(rows,
			benchRow{group: g, metric: "creates/s, " + n, vals: cr.rate, unit: "/s", prec: 2,
				note: fmt.Sprintf("%d clients, create then release, round-robin", c.conc)},
			benchRow{group: g, metric: "create p50, " + n, vals: cr.lat.p50, unit: "ms", prec: 0},
			benchRow{group: g, metric: "create p90, " + n, vals: cr.lat.p90, unit: "ms", prec: 0},
			benchRow{group: g, metric: "where the creates landed, " + n, text: landed(cr.landed, cr.total)},
		)
	}
	return rows
}

// landed renders where sessions landed: "node1 10, node2 9, node3 11 (of 30)".
func landed(m map[string]int, total int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return fmt.Sprintf("%s (of %d)", strings.Join(parts, ", "), total)
}
