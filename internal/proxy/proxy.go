package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
)

// Config configures the proxies a Starter starts.
type Config struct {
	// AdHosts are the hosts refused when a plan blocks ads; nil refuses none.
	AdHosts *HostSet
	// TLS is the base TLS configuration for https upstream proxies (root CAs); nil uses
	// the system's.
	TLS *tls.Config
	// DialTimeout bounds a connection to a host or upstream proxy and its handshake [15s].
	DialTimeout time.Duration
	// AllowPrivate lets direct connections, and the upstream proxies a client named
	// (type "external"), reach loopback, link-local, private and other non-public
	// addresses (see Classify). Off, they are refused with a blocked page
	// (--allow-private-networks). The operator's managed upstreams are always allowed.
	AllowPrivate bool
	// Reserved are the server's own listening ports: loopback and local-address
	// destinations on them are refused even with AllowPrivate. A proxy with a TCP
	// listener reserves its own port in it. nil reserves none.
	Reserved *bb.ReservedPorts
	// Resolve resolves host names for direct connections and client-named upstreams;
	// nil uses net.DefaultResolver. Each connection dials only the addresses checked.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	Logger  *slog.Logger

	dialControl func(ctx context.Context, network, address string, c syscall.RawConn) error // tests: see each dial
}

// Starter starts session proxies. It implements bb.ProxyStarter.
type Starter struct{ cfg Config }

var _ bb.ProxyStarter = (*Starter)(nil)

// NewStarter returns a Starter for cfg.
func NewStarter(cfg Config) *Starter { return &Starter{cfg: cfg} }

// StartProxy starts a proxy for a session. It listens on no port: the browser's
// connections come through ServeConn, from its sandbox (internal/chrome).
func (s *Starter) StartProxy(sessionID string, plan bb.NetworkPlan) (bb.SessionProxy, error) {
	return New(sessionID, plan, s.cfg)
}

// NewProxy returns a proxy for a session that serves only the connections handed to
// its ServeConn.
func (s *Starter) NewProxy(sessionID string, plan bb.NetworkPlan) (*Proxy, error) {
	return New(sessionID, plan, s.cfg)
}

// routing is a plan with what serves it. SetPlan replaces it; a request uses the one
// current when it arrives.
type routing struct {
	log        *slog.Logger // with the session's id
	plan       bb.NetworkPlan
	adHosts    *HostSet
	transports map[*bb.ProxyUpstream]*http.Transport // one per route upstream; nil key: direct

	// Guarded by the Proxy's mu:
	warned  map[string]bool // upstreams whose refused credentials were logged
	refused refusedLog
}

// Proxy is one session's forward proxy. It serves a TCP listener on 127.0.0.1 (Start)
// and connections handed to ServeConn.
type Proxy struct {
	cfg     Config
	log     *slog.Logger  // for the http.Server's own errors
	ln      net.Listener  // nil without a TCP listener
	conns   *connListener // ServeConn's connections
	release func()        // the listener's port reservation
	srv     *http.Server
	dialer  *dialer
	direct  *http.Transport
	bytes   atomic.Int64

	mu      sync.Mutex
	rt      *routing
	retired []*http.Transport     // transports of replaced plans, closed by Close
	tunnels map[net.Conn]struct{} // both ends of every open tunnel
	closed  bool
	wg      sync.WaitGroup // Serve and the tunnels' pumps
}

// New returns a proxy for plan that serves only the connections handed to ServeConn.
// A plan whose client-named upstream is an address the policy refuses fails with
// CodeInvalid.
func New(sessionID string, plan bb.NetworkPlan, cfg Config) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger.With("session_id", sessionID),
		conns:   newConnListener(),
		release: func() {},
		tunnels: make(map[net.Conn]struct{}),
	}
	tlsSrc, err := newTLSConfigSource(cfg.TLS, plan.RootCAs) // dial.go
	if err != nil {
		return nil, err
	}
	p.dialer = &dialer{net: net.Dialer{Timeout: cfg.DialTimeout, ControlContext: cfg.dialControl}, pol: newPolicy(cfg), tls: tlsSrc, bytes: &p.bytes, timeout: cfg.DialTimeout}
	if err := p.dialer.pol.checkUpstreams(plan); err != nil {
		return nil, err
	}
	p.direct = p.newTransport(nil)
	p.rt = p.newRouting(sessionID, plan)
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.wg.Go(func() { p.srv.Serve(p.conns) }) // returns once Close shuts srv down
	return p, nil
}

// Start starts a proxy for plan on 127.0.0.1 with a random port, which it reserves in
// cfg.Reserved while it runs. It also serves ServeConn.
func Start(sessionID string, plan bb.NetworkPlan, cfg Config) (*Proxy, error) {
	p, err := New(sessionID, plan, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close() // nothing served yet
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p.ln = ln
	p.release = cfg.Reserved.ReserveAddr(ln.Addr())
	p.wg.Go(func() { p.srv.Serve(ln) }) // returns ErrServerClosed once Close shuts srv down
	return p, nil
}

// newRouting builds the transports of plan's upstreams.
func (p *Proxy) newRouting(sessionID string, plan bb.NetworkPlan) *routing {
	rt := &routing{
		log:        p.cfg.Logger.With("session_id", sessionID),
		plan:       plan,
		adHosts:    p.cfg.AdHosts,
		transports: map[*bb.ProxyUpstream]*http.Transport{nil: p.direct},
		warned:     make(map[string]bool),
	}
	if !plan.BlockAds {
		rt.adHosts = nil
	}
	for _, r := range plan.Routes {
		if r.Upstream != nil && rt.transports[r.Upstream] == nil {
			rt.transports[r.Upstream] = p.newTransport(r.Upstream)
		}
	}
	return rt
}

// SetPlan makes the proxy route new connections and requests by plan, and log them
// for sessionID: a warm browser's proxy, started with the default plan, takes the plan
// of the session that takes the browser. Open tunnels keep their route; Bytes keeps
// counting. It fails with CodeInvalid for a client-named upstream the policy refuses
// (the plan is unchanged), and when the proxy is closed. The CA certificates trusted
// for https upstreams stay those of the plan New was given (plan.RootCAs is ignored).
func (p *Proxy) SetPlan(sessionID string, plan bb.NetworkPlan) error {
	if err := p.dialer.pol.checkUpstreams(plan); err != nil {
		return err
	}
	rt := p.newRouting(sessionID, plan)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return net.ErrClosed
	}
	old := p.rt
	p.rt = rt
	for u, t := range old.transports {
		if u != nil {
			p.retired = append(p.retired, t)
			t.CloseIdleConnections() // requests in flight finish; Close closes what they leave idle
		}
	}
	p.mu.Unlock()
	return nil
}

func (p *Proxy) routing() *routing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rt
}

// ServeConn serves the proxy protocol on c, a browser's connection handed over (fd
// passing) instead of accepted from the TCP listener. It does not wait for c to be
// served: it returns once the proxy has taken c, which Close then closes. After Close
// it closes c and returns net.ErrClosed.
func (p *Proxy) ServeConn(c net.Conn) error { return p.conns.hand(c) }

// newTransport returns the transport for plain HTTP requests routed to u (nil: direct).
func (p *Proxy) newTransport(u *bb.ProxyUpstream) *http.Transport {
	t := &http.Transport{
		DisableCompression:    true, // pass Chromium's Accept-Encoding and bodies through as they are
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // slow responses are the page's business
		TLSHandshakeTimeout:   p.cfg.DialTimeout,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return p.dialer.dialDirect(ctx, addr)
		},
	}
	switch {
	case u == nil:
	case u.Scheme == "socks5":
		t.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return p.dialer.dial(ctx, u, addr) }
	default:
		pu := &url.URL{Scheme: u.Scheme, Host: u.Host}
		if u.Username != "" || u.Password != "" {
			pu.User = url.UserPassword(u.Username, u.Password)
		}
		t.Proxy = http.ProxyURL(pu)
		t.TLSClientConfig = p.dialer.tls.forHost(strings.Split(u.Host, ":")[0])
		t.TLSClientConfig.ServerName = "" // derived per dial from the proxy URL
		// addr is the upstream's: the transport speaks to the proxy itself.
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return p.dialer.dialUpstreamTCP(ctx, u) }
	}
	return t
}

// Addr is the proxy's TCP address, 127.0.0.1:port; "" for a proxy made by New.
func (p *Proxy) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Bytes is how many bytes went to and came from upstream proxies, both directions,
// handshakes included. Direct connections are not counted.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// Close stops the proxy: it closes the listener, every client connection (accepted or
// handed to ServeConn) and every tunnel, and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close() // ends the tunnel's pumps; nothing to flush on a raw tunnel
	}
	transports := append([]*http.Transport{p.direct}, p.retired...)
	for u, t := range p.rt.transports {
		if u != nil {
			transports = append(transports, t)
		}
	}
	p.mu.Unlock()
	p.conns.Close() // for a proxy whose Serve has not started yet; srv.Close closes it too
	err := p.srv.Close()
	for _, t := range transports {
		t.CloseIdleConnections()
	}
	p.wg.Wait()
	p.release()
	return err
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r, p.routing())
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "browserd proxy: only absolute http:// URLs and CONNECT are proxied", http.StatusBadRequest)
		return
	}
	p.serveHTTP(w, r, p.routing())
}

// blocked writes a refusal when blockAds refuses host.
func (p *Proxy) blocked(w http.ResponseWriter, rt *routing, host string) bool {
	if !rt.adHosts.Contains(host) {
		return false
	}
	w.Header().Set("X-Browserd-Blocked", "blockAds")
	http.Error(w, "browserd proxy: "+host+" is an ad server (browserSettings.blockAds)", http.StatusForbidden)
	return true
}

// fail answers a request that could not reach its host. The status is 502 even for
// refused upstream credentials: a 407 would make Chromium ask for credentials of its own.
func (p *Proxy) fail(w http.ResponseWriter, rt *routing, host string, err error) {
	if be, ok := errors.AsType[*BlockedError](err); ok {
		p.refuse(w, rt, be)
		return
	}
	msg := "browserd proxy: cannot reach " + host + ": " + err.Error()
	if ue, ok := errors.AsType[*upstreamError](err); ok && errors.Is(err, ErrUpstreamAuth) {
		msg = "browserd proxy: the upstream proxy " + ue.upstream + " refused the credentials (407 Proxy Authentication Required); check the username and password of the proxy rule"
		p.mu.Lock()
		first := !rt.warned[ue.upstream]
		rt.warned[ue.upstream] = true
		p.mu.Unlock()
		if first {
			rt.log.Warn("upstream proxy refused the credentials", "upstream", ue.upstream)
		}
	} else {
		rt.log.Debug("proxy connection failed", "host", host, "err", err)
	}
	w.Header().Set("X-Browserd-Proxy-Error", strings.ReplaceAll(msg, "\n", " "))
	// Not http.Error: its X-Content-Type-Options: nosniff makes Chromium's opaque
	// response blocking (ORB) drop the answer to an image or script request, which then
	// fails as net::ERR_BLOCKED_BY_ORB with no response; without it the page's request
	// ends 502 with this header, and the logs (and the inspector) say why.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintln(w, msg)
}

func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, rt *routing) {
	target := r.Host
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		http.Error(w, "browserd proxy: CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	if p.blocked(w, rt, host) {
		return
	}
	up := rt.plan.Route(host)
	ctx, cancel := context.WithTimeout(r.Context(), p.dialer.timeout)
	out, err := p.dialer.dial(ctx, up, target)
	cancel()
	if err != nil {
		p.fail(w, rt, host, err)
		return
	}
	rc := http.NewResponseController(w)
	in, brw, err := rc.Hijack()
	if err != nil {
		out.Close() // never used
		http.Error(w, "browserd proxy: cannot hijack the connection", http.StatusInternalServerError)
		return
	}
	// Bytes the client sent after the CONNECT request, already buffered.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pre, _ = brw.Reader.Peek(n) // n bytes are buffered: no error
	}
	p.tunnel(in, out, pre)
}

// tunnel answers a CONNECT on in and pumps between in and out until either side ends.
// When the proxy is closing it closes both instead. The pump is registered under mu, so
// that Close, which sets closed under mu before it waits, waits for it too.
func (p *Proxy) tunnel(in, out net.Conn, pre []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		in.Close()
		out.Close()
		return
	}
	p.tunnels[in] = struct{}{}
	p.tunnels[out] = struct{}{}
	p.wg.Go(func() { // exits when either side closes (Close closes both)
		if _, err := io.WriteString(in, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
			p.untrack(in, out)
			return
		}
		p.pump(in, out, pre)
	})
}

func (p *Proxy) untrack(in, out net.Conn) {
	p.mu.Lock()
	delete(p.tunnels, in)
	delete(p.tunnels, out)
	p.mu.Unlock()
	in.Close() // the tunnel is over; both directions are done
	out.Close()
}

// pump copies both ways until one side ends, then closes both.
func (p *Proxy) pump(in, out net.Conn, pre []byte) {
	defer p.untrack(in, out)
	done := make(chan struct{})
	go func() { // exits when out or in fails, at the latest when untrack closes them
		defer close(done)
		if len(pre) > 0 {
			if _, err := out.Write(pre); err != nil {
				return
			}
		}
		io.Copy(out, in)
		closeWrite(out)
	}()
	io.Copy(in, out)
	closeWrite(in)
	<-done
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() // best effort: a failure means the peer is gone anyway
		return
	}
	c.Close() // no half-close (TLS, buffered): end the other pump too
}

// hopHeaders are the headers of one hop, never forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request, rt *routing) {
	host := r.URL.Hostname()
	if p.blocked(w, rt, host) {
		return
	}
	up := rt.plan.Route(host)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	removeHopHeaders(out.Header)
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := rt.transports[up].RoundTrip(out)
	if err != nil {
		if up != nil && !errors.As(err, new(*upstreamError)) {
			err = &upstreamError{up.String(), err}
		}
		p.fail(w, rt, host, err)
		return
	}
	defer resp.Body.Close()
	if up != nil && up.Scheme != "socks5" && resp.StatusCode == http.StatusProxyAuthRequired {
		p.fail(w, rt, host, &upstreamError{up.String(), ErrUpstreamAuth})
		return
	}
	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush() // stream: an error means the client left, seen at the next write
		}
		if err != nil {
			return
		}
	}
}
