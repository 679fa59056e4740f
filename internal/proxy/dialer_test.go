package proxy

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

// TestDialerPolicy checks that the exported Dialer (POST /v1/fetch's) refuses what
// session proxies refuse, with the same *BlockedError, and reaches what they reach.
func TestDialerPolicy(t *testing.T) {
	site := startCounting(t)
	dns := newFakeDNS(map[string][]string{
		"rebind.test":   {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
		"mixed.test":    {"93.184.215.14", "10.0.0.7"},
	})
	reserved := &bb.ReservedPorts{}
	release := reserved.Reserve(mustPort(t, site.port))
	defer release()
	closed := NewDialer(Config{Resolve: dns.resolve, Reserved: reserved})
	open := NewDialer(Config{Resolve: dns.resolve, Reserved: reserved, AllowPrivate: true})
	tests := []struct {
		name, target string
		d            *Dialer
		class        Class
		badHost      bool
		serverPort   bool
	}{
		{name: "loopback", target: "127.0.0.1:" + site.port, d: closed, class: Loopback},
		{name: "localhost", target: "localhost:" + site.port, d: closed, class: Loopback},
		{name: "ipv6 loopback", target: "[::1]:" + site.port, d: closed, class: Loopback},
		{name: "mapped loopback", target: "[::ffff:127.0.0.1]:" + site.port, d: closed, class: Loopback},
		{name: "nat64 loopback", target: "[64:ff9b::7f00:1]:80", d: closed, class: Loopback},
		{name: "metadata", target: "169.254.169.254:80", d: closed, class: Metadata},
		{name: "metadata by name", target: "metadata.test:80", d: closed, class: Metadata},
		{name: "private", target: "192.168.1.1:80", d: closed, class: Private},
		{name: "private among public", target: "mixed.test:80", d: closed, class: Private},
		{name: "unique local v6", target: "[fd00::1]:80", d: closed, class: Private},
		{name: "link-local v6", target: "[fe80::1]:80", d: closed, class: LinkLocal},
		{name: "name resolving to loopback", target: "rebind.test:" + site.port, d: closed, class: Loopback},
		{name: "decimal", target: "2130706433:80", d: open, badHost: true},
		{name: "octal", target: "0177.0.0.1:80", d: open, badHost: true},
		{name: "hex", target: "0x7f.1:80", d: open, badHost: true},
		{name: "server port, private allowed", target: "127.0.0.1:" + site.port, d: open, serverPort: true},
		{name: "server port on another loopback", target: "127.0.0.2:" + site.port, d: open, serverPort: true},
		{name: "server port by localhost", target: "localhost:" + site.port, d: open, serverPort: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.d.Dial(t.Context(), nil, tt.target)
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%s) connected; want it refused", tt.target)
			}
			be, ok := errors.AsType[*BlockedError](err)
			if !ok {
				t.Fatalf("Dial(%s) = %v; want a *BlockedError", tt.target, err)
			}
			if be.BadHost != tt.badHost || be.ServerPort != tt.serverPort || (!tt.badHost && !tt.serverPort && be.Class != tt.class) {
				t.Errorf("Dial(%s) = %+v; want class %q, badHost %v, serverPort %v", tt.target, be, tt.class, tt.badHost, tt.serverPort)
			}
		})
	}
	if n := site.hits.Load(); n != 0 {
		t.Errorf("the site was reached %d times", n)
	}
	release()
	c, err := open.Dial(t.Context(), nil, "127.0.0.1:"+site.port)
	if err != nil {
		t.Fatalf("Dial with private networks allowed: %v", err)
	}
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(c) // a short read shows below
	c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.0 200") {
		t.Errorf("answer %q", b)
	}
}

// TestDialerUpstream checks a connection through a managed upstream: tunnelled, the
// destination resolved by the upstream (a loopback upstream is the operator's own),
// and the bytes counted.
func TestDialerUpstream(t *testing.T) {
	o := startOrigins(t)
	up := startHTTPUpstream(t, "up", "u", "p", o, false)
	d := NewDialer(Config{})
	u := &bb.ProxyUpstream{Scheme: "http", Host: up.ln.Addr().String(), Username: "u", Password: "p", Managed: true}
	c, err := d.Dial(t.Context(), u, "site.test:80")
	if err != nil {
		t.Fatalf("Dial through the upstream: %v", err)
	}
	io.WriteString(c, "GET /x HTTP/1.0\r\nHost: site.test\r\n\r\n")
	b, _ := io.ReadAll(c) // a short read shows below
	c.Close()
	if !strings.Contains(string(b), "origin site.test /x") {
		t.Errorf("answer %q", b)
	}
	if got := up.seen(); len(got) != 1 || got[0] != "site.test" {
		t.Errorf("upstream saw %v", got)
	}
	if d.UpstreamBytes() == 0 {
		t.Error("no upstream bytes counted")
	}
	bad := *u
	bad.Password = "wrong"
	if _, err := d.Dial(t.Context(), &bad, "site.test:80"); !errors.Is(err, ErrUpstreamAuth) {
		t.Errorf("Dial with refused credentials = %v; want ErrUpstreamAuth", err)
	}
}

// TestDialerPeers: with private networks allowed, a peer node of the cluster
// (ReservedPorts.SetPeers) is refused as the server's own ports are, by address or by a
// name resolving to it; the same host on another port, and a peer set that no longer
// has it, are reached.
func TestDialerPeers(t *testing.T) {
	site := startCounting(t)
	dns := newFakeDNS(map[string][]string{"peer.test": {"127.0.0.1"}})
	reserved := &bb.ReservedPorts{}
	reserved.SetPeers([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:" + site.port)})
	open := NewDialer(Config{Resolve: dns.resolve, Reserved: reserved, AllowPrivate: true})
	for _, target := range []string{"127.0.0.1:" + site.port, "peer.test:" + site.port, "[::ffff:127.0.0.1]:" + site.port} {
		c, err := open.Dial(t.Context(), nil, target)
		if err == nil {
			c.Close()
			t.Fatalf("Dial(%s) connected to a peer", target)
		}
		if be, ok := errors.AsType[*BlockedError](err); !ok || !be.ServerPort {
			t.Errorf("Dial(%s) = %v; want a server-port refusal", target, err)
		}
	}
	if n := site.hits.Load(); n != 0 {
		t.Errorf("the peer was reached %d times", n)
	}
	reserved.SetPeers(nil)
	c, err := open.Dial(t.Context(), nil, "127.0.0.1:"+site.port)
	if err != nil {
		t.Fatalf("Dial after the peer left the set: %v", err)
	}
	c.Close()
}
