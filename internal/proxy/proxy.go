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
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
	Logger      *slog.Logger
}

// Starter starts session proxies. It implements bb.ProxyStarter.
type Starter struct{ cfg Config }

var _ bb.ProxyStarter = (*Starter)(nil)

// NewStarter returns a Starter for cfg.
func NewStarter(cfg Config) *Starter { return &Starter{cfg: cfg} }

// StartProxy starts a proxy for a session.
func (s *Starter) StartProxy(sessionID string, plan bb.NetworkPlan) (bb.SessionProxy, error) {
	return Start(sessionID, plan, s.cfg)
}

// Proxy is one session's forward proxy, listening on 127.0.0.1.
type Proxy struct {
	plan    bb.NetworkPlan
	adHosts *HostSet
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	dialer  *dialer
	bytes   atomic.Int64

	transports map[*bb.ProxyUpstream]*http.Transport // one per route upstream; nil key: direct

	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // both ends of every open tunnel
	closed  bool
	warned  map[string]bool // upstreams whose refused credentials were logged
	wg      sync.WaitGroup  // Serve and the tunnels' pumps
}

// Start starts a proxy for plan on 127.0.0.1 with a random port.
func Start(sessionID string, plan bb.NetworkPlan, cfg Config) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &Proxy{
		plan:       plan,
		adHosts:    cfg.AdHosts,
		log:        cfg.Logger.With("session_id", sessionID),
		ln:         ln,
		transports: make(map[*bb.ProxyUpstream]*http.Transport),
		tunnels:    make(map[net.Conn]struct{}),
		warned:     make(map[string]bool),
	}
	if !plan.BlockAds {
		p.adHosts = nil
	}
	p.dialer = &dialer{net: net.Dialer{Timeout: cfg.DialTimeout}, tls: &tlsConfigSource{cfg.TLS}, bytes: &p.bytes, timeout: cfg.DialTimeout}
	p.transports[nil] = p.newTransport(nil, cfg)
	for _, r := range plan.Routes {
		if r.Upstream != nil {
			p.transports[r.Upstream] = p.newTransport(r.Upstream, cfg)
		}
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.wg.Go(func() { p.srv.Serve(ln) }) // returns ErrServerClosed once Close shuts srv down
	return p, nil
}

// newTransport returns the transport for plain HTTP requests routed to u (nil: direct).
func (p *Proxy) newTransport(u *bb.ProxyUpstream, cfg Config) *http.Transport {
	t := &http.Transport{
		DisableCompression:    true, // pass Chromium's Accept-Encoding and bodies through as they are
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // slow responses are the page's business
		TLSHandshakeTimeout:   cfg.DialTimeout,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
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
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: &p.bytes}, nil
		}
	}
	return t
}

// Addr is the proxy's address, 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Bytes is how many bytes went to and came from upstream proxies, both directions,
// handshakes included. Direct connections are not counted.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// Close stops the proxy: it closes the listener, every client connection and every
// tunnel, and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close() // ends the tunnel's pumps; nothing to flush on a raw tunnel
	}
	p.mu.Unlock()
	err := p.srv.Close()
	for _, t := range p.transports {
		t.CloseIdleConnections()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r)
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "browserd proxy: only absolute http:// URLs and CONNECT are proxied", http.StatusBadRequest)
		return
	}
	p.serveHTTP(w, r)
}

// blocked writes a refusal when blockAds refuses host.
func (p *Proxy) blocked(w http.ResponseWriter, host string) bool {
	if !p.adHosts.Contains(host) {
		return false
	}
	w.Header().Set("X-Browserd-Blocked", "blockAds")
	http.Error(w, "browserd proxy: "+host+" is an ad server (browserSettings.blockAds)", http.StatusForbidden)
	return true
}

// fail answers a request that could not reach its host. The status is 502 even for
// refused upstream credentials: a 407 would make Chromium ask for credentials of its own.
func (p *Proxy) fail(w http.ResponseWriter, host string, err error) {
	msg := "browserd proxy: cannot reach " + host + ": " + err.Error()
	if ue, ok := errors.AsType[*upstreamError](err); ok && errors.Is(err, ErrUpstreamAuth) {
		msg = "browserd proxy: the upstream proxy " + ue.upstream + " refused the credentials (407 Proxy Authentication Required); check the username and password of the proxy rule"
		p.mu.Lock()
		first := !p.warned[ue.upstream]
		p.warned[ue.upstream] = true
		p.mu.Unlock()
		if first {
			p.log.Warn("upstream proxy refused the credentials", "upstream", ue.upstream)
		}
	} else {
		p.log.Debug("proxy connection failed", "host", host, "err", err)
	}
	w.Header().Set("X-Browserd-Proxy-Error", strings.ReplaceAll(msg, "\n", " "))
	http.Error(w, msg, http.StatusBadGateway)
}

func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		http.Error(w, "browserd proxy: CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	if p.blocked(w, host) {
		return
	}
	up := p.plan.Route(host)
	ctx, cancel := context.WithTimeout(r.Context(), p.dialer.timeout)
	out, err := p.dialer.dial(ctx, up, target)
	cancel()
	if err != nil {
		p.fail(w, host, err)
		return
	}
	rc := http.NewResponseController(w)
	in, brw, err := rc.Hijack()
	if err != nil {
		out.Close() // never used
		http.Error(w, "browserd proxy: cannot hijack the connection", http.StatusInternalServerError)
		return
	}
	if !p.track(in, out) {
		return
	}
	if _, err := io.WriteString(in, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		p.untrack(in, out)
		return
	}
	// Bytes the client sent after the CONNECT request, already buffered.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pre, _ = brw.Reader.Peek(n) // n bytes are buffered: no error
	}
	p.wg.Go(func() { p.pump(in, out, pre) }) // exits when either side closes (Close closes both)
}

// track registers a tunnel's ends; false (both closed) when the proxy is closing.
func (p *Proxy) track(in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		in.Close()
		out.Close()
		return false
	}
	p.tunnels[in] = struct{}{}
	p.tunnels[out] = struct{}{}
	return true
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

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Hostname()
	if p.blocked(w, host) {
		return
	}
	up := p.plan.Route(host)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	removeHopHeaders(out.Header)
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.transports[up].RoundTrip(out)
	if err != nil {
		if up != nil && !errors.As(err, new(*upstreamError)) {
			err = &upstreamError{up.String(), err}
		}
		p.fail(w, host, err)
		return
	}
	defer resp.Body.Close()
	if up != nil && up.Scheme != "socks5" && resp.StatusCode == http.StatusProxyAuthRequired {
		p.fail(w, host, &upstreamError{up.String(), ErrUpstreamAuth})
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
