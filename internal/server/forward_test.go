package server

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// settings is a SettingStore in memory (the cluster secret of TestVerifiedHop).
type settings struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *settings) SettingOrInit(_ context.Context, name string, init []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[name]; ok {
		return v, nil
	}
	s.m[name] = init
	return init, nil
}

// TestVerifiedHop: the check by which the failed-authentication limit takes a request
// for a peer's (and believes its X-Forwarded-For) passes a hop signed with the
// cluster's secret for the request's method and path, and nothing a client without
// that secret can send.
func TestVerifiedHop(t *testing.T) {
	keys, err := cluster.NewKeyring(t.Context(), &settings{m: map[string][]byte{}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := cluster.NewKeyring(t.Context(), &settings{m: map[string][]byte{}}) // another cluster's secret
	if err != nil {
		t.Fatal(err)
	}
	const (
		path = "/v1/sessions/2a2b3c4d-0000-4000-8000-00000000000b"
		peer = "5f3c2a10-8b4d-4e6f-a1b2-c3d4e5f60718" // a node id
	)
	hop := verifiedHop(keys)
	tests := []struct {
		name string
		hops []string // HopHeader values; none: no header
		want bool
	}{
		{name: "signed by a peer", hops: []string{keys.Sign(peer, "GET", path)}, want: true},
		{name: "no header"},
		{name: "an API key", hops: []string{testAPIKey}},
		{name: "another secret", hops: []string{other.Sign(peer, "GET", path)}},
		{name: "another path", hops: []string{keys.Sign(peer, "GET", "/v1/projects")}},
		{name: "another method", hops: []string{keys.Sign(peer, "DELETE", path)}},
		{name: "a MAC of zeros", hops: []string{peer + "." + strconv.FormatInt(time.Now().Unix(), 10) + "." + strings.Repeat("A", 43)}},
		{name: "twice", hops: []string{keys.Sign(peer, "GET", path), keys.Sign(peer, "GET", path)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", path, nil)
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			for _, h := range tt.hops {
				r.Header.Add(cluster.HopHeader, h)
			}
			if got := hop(r); got != tt.want {
				t.Errorf("verifiedHop = %v; want %v", got, tt.want)
			}
		})
	}
}
