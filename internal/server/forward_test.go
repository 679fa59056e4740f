package server

import (
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/httpapi"
)

// peers is a fixed peersView.
type peers struct {
	nodes     []*bb.Node
	placeable bool
}

func (p peers) Peers() []*bb.Node { return p.nodes }
func (p peers) Placeable() bool   { return p.placeable }

// TestMemberView: the forwarder sees live members only, by id, and this node's
// placeability.
func TestMemberView(t *testing.T) {
	v := memberView{self: "a", peers: peers{placeable: false, nodes: []*bb.Node{
		{ID: "a", State: bb.NodeActive}, {ID: "b", State: bb.NodeDraining}, {ID: "c", State: bb.NodeLost}, {ID: "d", State: bb.NodeLeft},
	}}}
	var _ cluster.Members = v
	if _, ok := v.Node("b"); !ok {
		t.Error("a draining node is not found (it still serves its sessions)")
	}
	for _, id := range []string{"c", "d", "x"} {
		if _, ok := v.Node(id); ok {
			t.Errorf("node %s found; want only live nodes", id)
		}
	}
	if n := v.Nodes(); len(n) != 2 || v.Self() != "a" || v.Placeable() {
		t.Errorf("Nodes %v, Self %q, Placeable %v", n, v.Self(), v.Placeable())
	}
}

// TestNodeFullHeaderAgrees: the API marks a node-full refusal with the header placement
// looks for.
func TestNodeFullHeaderAgrees(t *testing.T) {
	if httpapi.NodeFullHeader != cluster.NodeFullHeader {
		t.Errorf("httpapi says %q, cluster looks for %q", httpapi.NodeFullHeader, cluster.NodeFullHeader)
	}
}
