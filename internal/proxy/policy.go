package proxy

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/netip"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// AllowPrivateHint says how an operator lets browsers reach private networks.
const AllowPrivateHint = "the operator of this browserd server can allow private networks with --allow-private-networks (environment BROWSERD_ALLOW_PRIVATE_NETWORKS=true)"

// BlockedError is a destination the proxy refuses to connect to.
type BlockedError struct {
	Host     string     // as the browser (or the session's proxy rule) named it, without port
	Port     uint16     // 0 when Host is invalid
	Addr     netip.Addr // the refused address; invalid when Host is not a valid host
	Class    Class      // Addr's class
	Upstream bool       // Host is the session's upstream proxy (type "external"), not the site
	// ServerPort means Addr:Port is one of the server's own listeners (bb.ReservedPorts),
	// refused even when private networks are allowed.
	ServerPort bool
	// BadHost means Host is neither a clean host name nor an IP address.
	BadHost bool
}

func (e *BlockedError) what() string {
	if e.Upstream {
		return "the session's proxy server " + net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
}

// resolved says what Host stands for: "resolves to 127.0.0.1 (loopback)", or for an
// address "is loopback".
func (e *BlockedError) resolved() string {
	if a, err := netip.ParseAddr(e.Host); err == nil && a == e.Addr {
		return "is " + string(e.Class)
	}
	return "resolves to " + e.Addr.String() + " (" + string(e.Class) + ")"
}

func (e *BlockedError) Error() string {
	switch {
	case e.BadHost:
		return fmt.Sprintf("%q is %v", e.Host, errBadHost)
	case e.ServerPort:
		return fmt.Sprintf("%s %s, and its port is one the browserd server itself listens on, never reachable from a browser", e.what(), e.resolved())
	}
	return fmt.Sprintf("%s %s, not a public address; browsers may not reach it: %s", e.what(), e.resolved(), AllowPrivateHint)
}

// page is the blocked page for a refused absolute-form HTTP request.
func (e *BlockedError) page() string {
	var why string
	switch {
	case e.BadHost:
		why = "<p>The host <code>" + html.EscapeString(strconv.Quote(e.Host)) + "</code> is not a valid host name or IP address.</p>"
	case e.ServerPort:
		why = "<p><code>" + html.EscapeString(e.what()) + "</code> " + html.EscapeString(e.resolved()) +
			", and its port is one the browserd server itself listens on. Browsers may never reach the server's own API, DevTools or WebDriver ports.</p>"
	default:
		why = "<p><code>" + html.EscapeString(e.what()) + "</code> " + html.EscapeString(e.resolved()) +
			", not a public address. Browsers may not reach loopback, link-local (cloud metadata), private or other non-public addresses.</p>" +
			"<p>The operator of this browserd server can allow private networks with <code>--allow-private-networks</code> (environment <code>BROWSERD_ALLOW_PRIVATE_NETWORKS=true</code>).</p>"
	}
	return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Blocked by browserd</title></head>\n<body><h1>browserd blocked this connection</h1>\n" + why + "\n</body></html>\n"
}

// policy decides which destinations a session proxy may connect to.
type policy struct {
	allowPrivate bool
	reserved     *bb.ReservedPorts
	resolve      func(ctx context.Context, host string) ([]netip.Addr, error)
	localAddrs   func() ([]netip.Addr, error) // the machine's interface addresses
}

func newPolicy(cfg Config) *policy {
	pol := &policy{allowPrivate: cfg.AllowPrivate, reserved: cfg.Reserved, resolve: cfg.Resolve, localAddrs: interfaceAddrs}
	if pol.resolve == nil {
		pol.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return pol
}

func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// destination checks target (host:port) and returns the addresses to dial: those the
// host resolved to, all of them allowed. Dial only these (never the name again: a second
// resolution could answer differently, DNS rebinding). A refusal is a *BlockedError;
// upstream says target is a session's upstream proxy.
func (pol *policy) destination(ctx context.Context, target string, upstream bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return nil, &BlockedError{Host: target, Upstream: upstream, BadHost: true}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &BlockedError{Host: target, Upstream: upstream, BadHost: true}
	}
	name, addr, err := parseHost(host)
	if err != nil {
		return nil, &BlockedError{Host: host, Upstream: upstream, BadHost: true}
	}
	var addrs []netip.Addr
	switch {
	case addr.IsValid():
		addrs = []netip.Addr{addr}
	case isLocalhost(name):
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	default:
		addrs, err = pol.resolve(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", name)
		}
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		if a.Zone() != "" { // a resolver's fe80::1%eth0: link-local, never dialled with its zone
			a = a.WithZone("")
		}
		be := &BlockedError{Host: host, Port: uint16(port), Addr: a, Class: Classify(a), Upstream: upstream}
		if be.Class != Public && !pol.allowPrivate {
			return nil, be
		}
		if pol.serverPort(a, uint16(port)) {
			be.ServerPort = true
			return nil, be
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out, nil
}

// serverPort reports whether a:port may reach one of the server's own listeners: a
// reserved port on any loopback address (127.0.0.2 reaches a listener on 0.0.0.0 too),
// the unspecified address (which Linux connects to the host) or one of the machine's
// interface addresses; or a peer node of its cluster (bb.ReservedPorts.SetPeers).
func (pol *policy) serverPort(a netip.Addr, port uint16) bool {
	if pol.reserved.IsPeer(a, port) { // another node of the cluster
		return true
	}
	if !pol.reserved.Contains(port) {
		return false
	}
	switch Classify(a) {
	case Loopback, Unspecified:
		return true
	}
	local, err := pol.localAddrs()
	if err != nil {
		return true // cannot tell: refuse a reserved port
	}
	a = a.Unmap()
	for _, l := range local {
		if l == a {
			return true
		}
	}
	return false
}

// fallbackDelay is how long dialAddrs waits for an address before it also tries the
// next one, as Go's dialer does for the addresses of a name (RFC 8305, Happy Eyeballs).
const fallbackDelay = 300 * time.Millisecond

// dialAddrs connects to one of addrs: it tries them in order, starting the next when the
// previous fails or has not answered within fallbackDelay, and keeps the first connection
// made. It returns only once every attempt has ended.
func dialAddrs(ctx context.Context, d *net.Dialer, addrs []netip.AddrPort) (net.Conn, error) {
	if len(addrs) == 1 {
		return d.DialContext(ctx, "tcp", addrs[0].String())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, len(addrs))
	next, running := 0, 0
	start := func() {
		ap := addrs[next]
		next++
		running++
		go func() { // ends with its dial, which cancel ends; waited for below
			c, err := d.DialContext(ctx, "tcp", ap.String())
			results <- result{c, err}
		}()
	}
	start()
	timer := time.NewTimer(fallbackDelay)
	defer timer.Stop()
	var won net.Conn
	var errs []error
	for running > 0 {
		select {
		case r := <-results:
			running--
			switch {
			case r.err == nil && won == nil:
				won = r.c
				cancel()
			case r.err == nil:
				r.c.Close() // a later winner; never used
			default:
				errs = append(errs, r.err)
				if won == nil && next < len(addrs) && ctx.Err() == nil {
					start()
					timer.Reset(fallbackDelay)
				}
			}
		case <-timer.C:
			if won == nil && next < len(addrs) {
				start()
				timer.Reset(fallbackDelay)
			}
		}
	}
	if won != nil {
		return won, nil
	}
	return nil, errors.Join(errs...)
}

// checkUpstreams refuses a plan whose client-named upstream proxies are IP addresses (or
// localhost) that the policy refuses, before anything connects: the session's create
// request fails with CodeInvalid instead of every page failing later. Host names are
// checked when they are resolved, at each connection.
func (pol *policy) checkUpstreams(plan bb.NetworkPlan) error {
	for _, r := range plan.Routes {
		u := r.Upstream
		if u == nil || u.Managed {
			continue
		}
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return bb.Errorf(bb.CodeInvalid, "proxies: the proxy server %s is not host:port", u)
		}
		name, addr, err := parseHost(host)
		if err != nil {
			return bb.Errorf(bb.CodeInvalid, "proxies: the proxy server %s is not a valid host name or IP address", u)
		}
		if !addr.IsValid() && !isLocalhost(name) {
			continue
		}
		_, err = pol.destination(context.Background(), u.Host, true) // no resolution: an address or localhost
		if be, ok := errors.AsType[*BlockedError](err); ok {
			return bb.Errorf(bb.CodeInvalid, "proxies: the proxy server %s is %s", u, be.reason())
		}
	}
	return nil
}

// reason is the refusal of an upstream, for an API error.
func (e *BlockedError) reason() string {
	if e.ServerPort {
		return "a port of this browserd server itself, never reachable from a session"
	}
	return fmt.Sprintf("%s (%s), which sessions may not use; %s", e.Addr, e.Class, AllowPrivateHint)
}
