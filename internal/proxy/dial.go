package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
)

// ErrUpstreamAuth means an upstream proxy refused the credentials (HTTP 407, or a SOCKS5
// username/password failure).
var ErrUpstreamAuth = errors.New("upstream proxy refused the credentials")

// countingConn adds every byte read and written to n.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// bufferedConn reads first what a bufio.Reader already holds.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// upstreamError is a failure at an upstream proxy, with the upstream named without its
// credentials.
type upstreamError struct {
	upstream string
	err      error
}

func (e *upstreamError) Error() string { return "upstream proxy " + e.upstream + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// dialer opens connections to upstream proxies and through them, and direct
// connections, all of them to destinations its policy allows.
type dialer struct {
	net     net.Dialer
	pol     *policy
	tls     *tlsConfigSource
	bytes   *atomic.Int64 // bytes exchanged with upstream proxies
	timeout time.Duration // for a proxy's handshake
}

// tlsConfigSource returns the TLS config for an https upstream named host.
type tlsConfigSource struct {
	base  *tls.Config
	roots *x509.CertPool // base's roots (or the system's) and the session's CAs; nil: base's
}

// newTLSConfigSource returns the source for base and a session's own CA certificates
// (bb.NetworkPlan.RootCAs, PEM): they are trusted beside base's roots, or beside the
// system's when base has none, by this session's proxy only.
func newTLSConfigSource(base *tls.Config, sessionCAs [][]byte) (*tlsConfigSource, error) {
	s := &tlsConfigSource{base: base}
	if len(sessionCAs) == 0 {
		return s, nil
	}
	var pool *x509.CertPool
	if base != nil && base.RootCAs != nil {
		pool = base.RootCAs.Clone()
	} else {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("system roots: %w", err)
		}
		pool = sys // a copy of its own
	}
	for _, p := range sessionCAs {
		if !pool.AppendCertsFromPEM(p) {
			return nil, bb.Errorf(bb.CodeInvalid, "a CA certificate of the session could not be read")
		}
	}
	s.roots = pool
	return s, nil
}

func (s *tlsConfigSource) forHost(host string) *tls.Config {
	c := &tls.Config{}
	if s != nil && s.base != nil {
		c = s.base.Clone()
	}
	if s != nil && s.roots != nil {
		c.RootCAs = s.roots
	}
	c.ServerName = host
	c.NextProtos = []string{"http/1.1"}
	return c
}

// dialDirect connects to target (host:port) directly, to an address the policy allows.
func (d *dialer) dialDirect(ctx context.Context, target string) (net.Conn, error) {
	addrs, err := d.pol.destination(ctx, target, false)
	if err != nil {
		return nil, err
	}
	return dialAddrs(ctx, &d.net, addrs)
}

// dialUpstreamTCP connects to the upstream proxy itself, counted: to a managed upstream
// by its name, to a client-named one only at an address the policy allows.
func (d *dialer) dialUpstreamTCP(ctx context.Context, u *bb.ProxyUpstream) (net.Conn, error) {
	var c net.Conn
	var err error
	if u.Managed {
		c, err = d.net.DialContext(ctx, "tcp", u.Host)
	} else {
		var addrs []netip.AddrPort
		if addrs, err = d.pol.destination(ctx, u.Host, true); err == nil {
			c, err = dialAddrs(ctx, &d.net, addrs)
		}
	}
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: d.bytes}, nil
}

// dialUpstream connects to the upstream proxy itself (TLS for https), counted.
func (d *dialer) dialUpstream(ctx context.Context, u *bb.ProxyUpstream) (net.Conn, error) {
	conn, err := d.dialUpstreamTCP(ctx, u)
	if err != nil {
		return nil, err
	}
	c := conn
	if u.Scheme == "https" {
		host, _, _ := net.SplitHostPort(u.Host)
		tc := tls.Client(conn, d.tls.forHost(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close() // the handshake failed; nothing to flush
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	return conn, nil
}

// dial returns a connection to target (host:port): directly when u is nil, else
// tunnelled through u.
func (d *dialer) dial(ctx context.Context, u *bb.ProxyUpstream, target string) (net.Conn, error) {
	if u == nil {
		return d.dialDirect(ctx, target)
	}
	conn, err := d.dialUpstream(ctx, u)
	if err != nil {
		return nil, &upstreamError{u.String(), err}
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl) // cleared below; a failed set shows as a timeout later
	} else {
		conn.SetDeadline(time.Now().Add(d.timeout))
	}
	tunnel := conn
	if u.Scheme == "socks5" {
		err = socksConnect(conn, target, u.Username, u.Password)
	} else {
		tunnel, err = httpConnect(conn, target, u.Username, u.Password)
	}
	if err != nil {
		conn.Close() // the handshake failed; nothing to flush
		return nil, &upstreamError{u.String(), err}
	}
	conn.SetDeadline(time.Time{})
	return tunnel, nil
}

// basicAuth is the value of a Proxy-Authorization header.
func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// httpConnect asks an HTTP proxy on conn for a tunnel to target.
func httpConnect(conn net.Conn, target, user, pass string) (net.Conn, error) {
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if user != "" || pass != "" {
		req += "Proxy-Authorization: " + basicAuth(user, pass) + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, fmt.Errorf("read CONNECT response: %w", err)
	}
	resp.Body.Close() // a CONNECT response has no body to drain
	switch {
	case resp.StatusCode == http.StatusProxyAuthRequired:
		return nil, ErrUpstreamAuth
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("CONNECT %s: %s", target, resp.Status)
	}
	return &bufferedConn{Conn: conn, r: br}, nil
}

// SOCKS5 (RFC 1928) constants.
const (
	socksVersion      = 5
	socksAuthNone     = 0
	socksAuthPassword = 2
	socksNoAcceptable = 0xff
	socksCmdConnect   = 1
	socksAtypIPv4     = 1
	socksAtypDomain   = 3
	socksAtypIPv6     = 4
)

var socksReplies = map[byte]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// socksConnect asks a SOCKS5 proxy on conn for a connection to target, authenticating
// with user and pass (RFC 1929) when the proxy asks for it. Host names are resolved by
// the proxy.
func socksConnect(conn net.Conn, target, user, pass string) error {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("bad port in %q", target)
	}
	methods := []byte{socksAuthNone}
	if user != "" || pass != "" {
		methods = append(methods, socksAuthPassword)
	}
	if _, err := conn.Write(append([]byte{socksVersion, byte(len(methods))}, methods...)); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(conn, sel[:]); err != nil {
		return fmt.Errorf("socks5 greeting: %w", err)
	}
	if sel[0] != socksVersion {
		return fmt.Errorf("socks5 greeting: version %d", sel[0])
	}
	switch sel[1] {
	case socksAuthNone:
	case socksAuthPassword:
		if len(user) > 255 || len(pass) > 255 {
			return errors.New("socks5: username and password must be at most 255 bytes")
		}
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		var st [2]byte
		if _, err := io.ReadFull(conn, st[:]); err != nil {
			return fmt.Errorf("socks5 authentication: %w", err)
		}
		if st[1] != 0 {
			return ErrUpstreamAuth
		}
	case socksNoAcceptable:
		if user == "" && pass == "" {
			return fmt.Errorf("socks5: the proxy requires authentication: %w", ErrUpstreamAuth)
		}
		return errors.New("socks5: the proxy accepts none of our authentication methods")
	default:
		return fmt.Errorf("socks5: the proxy chose an unknown method %d", sel[1])
	}
	req := []byte{socksVersion, socksCmdConnect, 0}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			req = append(append(req, socksAtypIPv4), ip4...)
		} else {
			req = append(append(req, socksAtypIPv6), ip.To16()...)
		}
	} else {
		if len(host) > 255 {
			return errors.New("socks5: host name longer than 255 bytes")
		}
		req = append(append(req, socksAtypDomain, byte(len(host))), host...)
	}
	req = append(req, byte(port>>8), byte(port))
	if _, err := conn.Write(req); err != nil {
		return err
	}
	_, err = readSocksReply(conn)
	return err
}

// readSocksReply reads a SOCKS5 reply and returns the bound address. A reply other than
// success is an error naming the failure.
func readSocksReply(r io.Reader) (string, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("socks5 reply: %w", err)
	}
	if h[0] != socksVersion {
		return "", fmt.Errorf("socks5 reply: version %d", h[0])
	}
	if h[1] != 0 {
		msg, ok := socksReplies[h[1]]
		if !ok {
			msg = fmt.Sprintf("error %d", h[1])
		}
		return "", fmt.Errorf("socks5: %s", msg)
	}
	var host string
	switch h[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := 4
		if h[3] == socksAtypIPv6 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("socks5 reply address: %w", err)
		}
		host = net.IP(b).String()
	case socksAtypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", fmt.Errorf("socks5 reply address: %w", err)
		}
		b := make([]byte, l[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("socks5 reply address: %w", err)
		}
		host = string(b)
	default:
		return "", fmt.Errorf("socks5 reply: address type %d", h[3])
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", fmt.Errorf("socks5 reply port: %w", err)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p[0])<<8|int(p[1]))), nil
}
