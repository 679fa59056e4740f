package browserd

import (
	"net"
	"net/netip"
	"slices"
	"sync"
)

// ReservedPorts is the set of TCP ports the server itself listens on (its API, the
// DevTools forwarders of its browsers, its chromedrivers, session proxies). Session
// proxies refuse loopback and local-address destinations on these ports even when the
// operator allows private networks (--allow-private-networks), so that a browser cannot
// reach the server's own unauthenticated listeners. The zero value is an empty set, safe
// for concurrent use; a nil *ReservedPorts holds nothing and ignores reservations.
type ReservedPorts struct {
	mu    sync.Mutex
	ports map[uint16]int // reservation counts
	peers map[netip.AddrPort]bool
}

// SetPeers replaces the addresses of the other nodes of this server's cluster (their
// --cluster-url host and port): session proxies and fetches refuse them as they refuse
// the server's own ports, even with private networks allowed, since a peer serves the
// same API and the node-to-node endpoints.
func (r *ReservedPorts) SetPeers(peers []netip.AddrPort) {
	if r == nil {
		return
	}
	m := make(map[netip.AddrPort]bool, len(peers))
	for _, p := range peers {
		m[netip.AddrPortFrom(p.Addr().Unmap(), p.Port())] = true
	}
	r.mu.Lock()
	r.peers = m
	r.mu.Unlock()
}

// IsPeer reports whether a:port is a peer's address (SetPeers).
func (r *ReservedPorts) IsPeer(a netip.Addr, port uint16) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[netip.AddrPortFrom(a.Unmap(), port)]
}

// Reserve adds port to the set until release is called. Reservations are counted: a port
// reserved twice stays reserved until both are released. release is idempotent.
func (r *ReservedPorts) Reserve(port uint16) (release func()) {
	if r == nil || port == 0 {
		return func() {}
	}
	r.mu.Lock()
	if r.ports == nil {
		r.ports = make(map[uint16]int)
	}
	r.ports[port]++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.ports[port]--; r.ports[port] <= 0 {
				delete(r.ports, port)
			}
		})
	}
}

// ReserveAddr reserves the port of a listener's address (a *net.TCPAddr or any
// net.Addr whose String is host:port). Addresses without a port reserve nothing.
func (r *ReservedPorts) ReserveAddr(a net.Addr) (release func()) {
	if a == nil {
		return func() {}
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return r.Reserve(uint16(t.Port))
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return func() {}
	}
	return r.Reserve(ap.Port())
}

// Contains reports whether port is reserved.
func (r *ReservedPorts) Contains(port uint16) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ports[port] > 0
}

// Ports returns the reserved ports in increasing order.
func (r *ReservedPorts) Ports() []uint16 {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := make([]uint16, 0, len(r.ports))
	for p := range r.ports {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
