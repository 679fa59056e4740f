package browserd_test

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestReservedPorts(t *testing.T) {
	var r bb.ReservedPorts
	rel1 := r.Reserve(9222)
	rel2 := r.Reserve(9222)
	rel3 := r.Reserve(4444)
	r.Reserve(0)() // port 0 is never reserved
	if diff := cmp.Diff(r.Ports(), []uint16{4444, 9222}); diff != "" {
		t.Errorf("Ports() (-got +want):\n%s", diff)
	}
	rel1()
	rel1() // idempotent: does not release the second reservation
	if !r.Contains(9222) {
		t.Error("9222 released while still reserved once")
	}
	rel2()
	rel3()
	if r.Contains(9222) || r.Contains(4444) || len(r.Ports()) != 0 {
		t.Errorf("after release: Ports() = %v", r.Ports())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := r.ReserveAddr(ln.Addr())
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	if !r.Contains(port) {
		t.Errorf("ReserveAddr(%s) did not reserve %d", ln.Addr(), port)
	}
	release()
	if r.Contains(port) {
		t.Errorf("%d still reserved after release", port)
	}

	var nilSet *bb.ReservedPorts
	nilSet.Reserve(1)()
	if nilSet.Contains(1) || nilSet.Ports() != nil {
		t.Error("a nil set holds ports")
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				rel := r.Reserve(uint16(1000 + i*100 + j))
				r.Contains(uint16(1000 + j))
				rel()
			}
		})
	}
	wg.Wait()
	if got := r.Ports(); len(got) != 0 {
		t.Errorf("after concurrent reserve/release: %v", got)
	}
}

// TestReservedPeers: SetPeers replaces the set; an IPv4-mapped address is its IPv4 one.
func TestReservedPeers(t *testing.T) {
	var r bb.ReservedPorts
	r.SetPeers([]netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:8080")})
	if !r.IsPeer(netip.MustParseAddr("::ffff:10.0.0.2"), 8080) || r.IsPeer(netip.MustParseAddr("10.0.0.2"), 8081) {
		t.Error("IsPeer does not match the peer set")
	}
	r.SetPeers(nil)
	if r.IsPeer(netip.MustParseAddr("10.0.0.2"), 8080) {
		t.Error("a peer outlived SetPeers(nil)")
	}
	var none *bb.ReservedPorts
	none.SetPeers([]netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:8080")})
	if none.IsPeer(netip.MustParseAddr("10.0.0.2"), 8080) {
		t.Error("a nil set holds a peer")
	}
}
