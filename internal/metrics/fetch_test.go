package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns the value of every counter sample of reg, keyed by name and labels.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				out[key] = c.GetValue()
			}
		}
	}
	return out
}

func TestFetches(t *testing.T) {
	reg := prometheus.NewRegistry()
	f, err := NewFetches(reg)
	if err != nil {
		t.Fatal(err)
	}
	f.Observe("p1", "markdown", "ok", 100, time.Second)
	f.Observe("p1", "markdown", "ok", 50, time.Second)
	f.Observe("p2", "raw", "refused", 0, time.Millisecond)
	got := gathered(t, reg)
	for key, want := range map[string]float64{
		"browserd_fetches_total format=markdown outcome=ok project_id=p1": 2,
		"browserd_fetches_total format=raw outcome=refused project_id=p2": 1,
		"browserd_fetch_bytes_total project_id=p1":                        150,
	} {
		if got[key] != want {
			t.Errorf("%s = %v; want %v (all: %v)", key, got[key], want, got)
		}
	}
	if _, err := NewFetches(reg); err == nil {
		t.Error("registering twice succeeded")
	}
}
