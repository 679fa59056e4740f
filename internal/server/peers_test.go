package server

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	bb "github.com/browserd/browserd"
)

// TestPeerAddrs: every node but this one, lost ones included, by its URL's host and
// port (80/443 by scheme without one); a name is resolved; a bad URL is skipped.
func TestPeerAddrs(t *testing.T) {
	nodes := []*bb.Node{
		{ID: "self", URL: "http://10.0.0.1:8080"},
		{ID: "a", URL: "http://10.0.0.2:8080", State: bb.NodeActive},
		{ID: "b", URL: "https://[fd00::5]", State: bb.NodeLost},
		{ID: "c", URL: "http://10.0.0.3", State: bb.NodeDraining},
		{ID: "d", URL: "http://localhost:9000"},
		{ID: "e", URL: "::not a url"},
		{ID: "f"},
	}
	got := peerAddrs(t.Context(), nodes, "self", slog.New(slog.DiscardHandler))
	for _, want := range []string{"10.0.0.2:8080", "[fd00::5]:443", "10.0.0.3:80", "127.0.0.1:9000"} {
		if !slices.Contains(got, netip.MustParseAddrPort(want)) {
			t.Errorf("peer addresses %v lack %s", got, want)
		}
	}
	if slices.Contains(got, netip.MustParseAddrPort("10.0.0.1:8080")) {
		t.Errorf("peer addresses %v hold this node's own", got)
	}
}
