package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	bb "github.com/browserd/browserd"
)

type fakeMembership struct {
	nodes  []*bb.Node
	member bool
}

func (f *fakeMembership) Peers() []*bb.Node { return f.nodes }
func (f *fakeMembership) IsMember() bool    { return f.member }

func TestClusterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(Config{Registry: reg, Version: "v9"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMembership{member: true, nodes: []*bb.Node{
		{ID: "a", State: bb.NodeActive}, {ID: "b", State: bb.NodeActive}, {ID: "c", State: bb.NodeLost},
	}}
	if err := m.WatchCluster(f); err != nil {
		t.Fatal(err)
	}
	body := scrape(t, reg)
	for _, want := range []string{
		`browserd_cluster_nodes{state="active"} 2`,
		`browserd_cluster_nodes{state="draining"} 0`,
		`browserd_cluster_nodes{state="left"} 0`,
		`browserd_cluster_nodes{state="lost"} 1`,
		"browserd_cluster_member 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	f.member = false
	if body := scrape(t, reg); !strings.Contains(body, "browserd_cluster_member 0\n") {
		t.Errorf("a fenced node's metrics lack browserd_cluster_member 0:\n%s", body)
	}
}
