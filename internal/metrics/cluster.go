package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	bb "github.com/browserd/browserd"
)

// membership is this node's view of its cluster; *cluster.Member satisfies it.
type membership interface {
	// Peers returns every node the cluster's database knows, as last read.
	Peers() []*bb.Node
	// IsMember reports whether this node holds its membership now.
	IsMember() bool
}

var (
	clusterNodesDesc = prometheus.NewDesc("browserd_cluster_nodes",
		"Nodes of the cluster by state (active, draining, left, lost), as this node last read them from the database.",
		[]string{"state"}, nil)
	clusterMemberDesc = prometheus.NewDesc("browserd_cluster_member",
		"1 while this node holds its cluster membership; 0 while it is fenced (its browsers killed) or has left.", nil, nil)
)

// clusterStates are the states browserd_cluster_nodes always has, 0 included, so that
// an alert on lost nodes has a series to watch.
var clusterStates = []bb.NodeState{bb.NodeActive, bb.NodeDraining, bb.NodeLeft, bb.NodeLost}

// clusterScraper reads the membership at scrape time.
type clusterScraper struct{ m membership }

func (s clusterScraper) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterNodesDesc
	ch <- clusterMemberDesc
}

func (s clusterScraper) Collect(ch chan<- prometheus.Metric) {
	counts := make(map[bb.NodeState]int)
	for _, n := range s.m.Peers() {
		counts[n.State]++
	}
	for _, st := range clusterStates {
		ch <- prometheus.MustNewConstMetric(clusterNodesDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	member := 0.0
	if s.m.IsMember() {
		member = 1
	}
	ch <- prometheus.MustNewConstMetric(clusterMemberDesc, prometheus.GaugeValue, member)
}

// WatchCluster registers the cluster gauges, read from m at scrape time: for a node
// started with --cluster-url only.
func (m *Metrics) WatchCluster(c membership) error {
	return m.reg.Register(clusterScraper{m: c})
}
