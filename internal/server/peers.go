package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// peerRefresh is how often the peers' addresses are read again for the session
// proxies' refusals: the membership reads the members every heartbeat (2 s).
const peerRefresh = 2 * time.Second

// watchPeers keeps reserved's peer set (bb.ReservedPorts.SetPeers) to the addresses of
// the cluster's other nodes, so that browsers and fetches cannot reach a peer's API or
// node-to-node endpoints even with --allow-private-networks. It returns its stop.
func watchPeers(members interface{ Peers() []*bb.Node }, self string, reserved *bb.ReservedPorts, logger *slog.Logger) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(peerRefresh)
		defer t.Stop()
		for {
			reserved.SetPeers(peerAddrs(ctx, members.Peers(), self, logger))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// peerAddrs returns the addresses of every node but self (lost and left ones too: one
// may come back at its address): the host of its URL, resolved when it is a name, and
// the URL's port (80 or 443 without one).
func peerAddrs(ctx context.Context, nodes []*bb.Node, self string, logger *slog.Logger) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range nodes {
		if n.ID == self || n.URL == "" {
			continue
		}
		u, err := url.Parse(n.URL)
		if err != nil || u.Hostname() == "" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
		p, err := netip.ParseAddrPort(net.JoinHostPort(u.Hostname(), port))
		if err == nil {
			out = append(out, p)
			continue
		}
		pn, err := net.LookupPort("tcp", port)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", u.Hostname())
		cancel()
		if err != nil {
			logger.Warn("peer address not resolved; browsers are not kept from it", "node", n.ID, "url", n.URL, "err", err)
			continue
		}
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(pn)))
		}
	}
	return out
}

// closePeerWatch stops the peer watch when the server closes.
func (m *Main) closePeerWatch(stop func()) {
	m.onClose(func(context.Context) error { stop(); return nil })
}
