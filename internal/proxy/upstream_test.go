package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// The upstream proxies of the tests answer for any host name: plain HTTP requests they
// answer themselves, and tunnels (CONNECT, SOCKS5) they connect to one local origin, a
// TLS server that also answers for any host. So no DNS is needed, and each answer says
// which upstream carried it.

// origins are two servers answering "origin <host> <path>" for any Host, plus a 1 MiB
// body at /big: one TLS, one plain.
type origins struct{ tls, plain string }

func startOrigins(t testing.TB) origins {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 1<<20)) // test server: a failed write fails the test's read
			return
		}
		fmt.Fprintf(w, "origin %s %s", r.Host, r.URL.Path)
	})
	ts, ps := httptest.NewTLSServer(h), httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(ps.Close)
	return origins{tls: ts.Listener.Addr().String(), plain: ps.Listener.Addr().String()}
}

func (u *upstream) tunnelTo(port string) string {
	if port == "443" {
		return u.originAddr
	}
	return u.plainAddr
}

// upstream is a test proxy: HTTP (CONNECT and absolute-form requests) or SOCKS5, with
// optional credentials, that records the hosts it was asked for.
type upstream struct {
	name       string
	user, pass string
	originAddr string // where tunnels to port 443 go
	plainAddr  string // where other tunnels go
	ln         net.Listener
	cert       *x509.Certificate // of a TLS upstream

	mu     sync.Mutex
	hosts  []string
	conns  []net.Conn // open tunnel ends, closed by stop
	closed bool
	wg     sync.WaitGroup
}

// goRelay relays between a and b in a goroutine that stop waits for.
func (u *upstream) goRelay(a, b net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		a.Close()
		b.Close()
		return
	}
	u.conns = append(u.conns, a, b)
	u.wg.Go(func() { relay(a, b) })
}

// stop closes every tunnel and waits for the relays.
func (u *upstream) stop() {
	u.mu.Lock()
	u.closed = true
	for _, c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hosts)
}

func (u *upstream) record(host string) {
	u.mu.Lock()
	u.hosts = append(u.hosts, host)
	u.mu.Unlock()
}

// startHTTPUpstream starts an HTTP proxy; tlsOn makes it an https:// proxy.
func startHTTPUpstream(t testing.TB, name, user, pass string, o origins, tlsOn bool) *upstream {
	t.Helper()
	u := &upstream{name: name, user: user, pass: pass, originAddr: o.tls, plainAddr: o.plain}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(u.serveHTTP))
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { srv.Close(); u.stop() })
	u.ln = srv.Listener
	u.cert = srv.Certificate()
	return u
}

func (u *upstream) authorized(r *http.Request) bool {
	if u.user == "" {
		return true
	}
	return r.Header.Get("Proxy-Authorization") == basicAuth(u.user, u.pass)
}

func (u *upstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !u.authorized(r) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		http.Error(w, "auth", http.StatusProxyAuthRequired)
		return
	}
	if r.Method != http.MethodConnect {
		u.record(r.URL.Hostname())
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 1<<20)) // test server: a failed write fails the test's read
			return
		}
		fmt.Fprintf(w, "%s %s %s", u.name, r.Host, r.URL.Path)
		return
	}
	host, port, _ := net.SplitHostPort(r.Host)
	u.record(host)
	out, err := net.Dial("tcp", u.tunnelTo(port))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	in, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		out.Close()
		return
	}
	io.WriteString(in, "HTTP/1.1 200 OK\r\n\r\n") // a failure shows in the relay
	u.goRelay(in, out)
}

// relay copies both ways and closes both ends when either ends.
func relay(a, b net.Conn) {
	var once sync.Once
	done := func() { once.Do(func() { a.Close(); b.Close() }) }
	go func() { io.Copy(a, b); done() }() // ends when a or b is closed
	io.Copy(b, a)
	done()
}

// startSOCKSUpstream starts a SOCKS5 proxy that tunnels every CONNECT to the origin.
func startSOCKSUpstream(t *testing.T, name, user, pass string, o origins) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, user: user, pass: pass, originAddr: o.tls, plainAddr: o.plain, ln: ln}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by cleanup
			}
			u.mu.Lock()
			if u.closed {
				c.Close()
			} else {
				u.conns = append(u.conns, c)
				u.wg.Go(func() { u.serveSOCKS(c) })
			}
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-accepting; u.stop() })
	return u
}

func (u *upstream) serveSOCKS(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil || h[0] != 5 {
		return
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	want := byte(0)
	if u.user != "" {
		want = 2
	}
	if !slices.Contains(methods, want) {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		var v [2]byte
		io.ReadFull(br, v[:])
		name := make([]byte, v[1])
		io.ReadFull(br, name)
		var pl [1]byte
		io.ReadFull(br, pl[:])
		pass := make([]byte, pl[0])
		io.ReadFull(br, pass)
		if string(name) != u.user || string(pass) != u.pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return
	}
	var host string
	switch req[3] {
	case 1:
		b := make([]byte, 4)
		io.ReadFull(br, b)
		host = net.IP(b).String()
	case 3:
		var l [1]byte
		io.ReadFull(br, l[:])
		b := make([]byte, l[0])
		io.ReadFull(br, b)
		host = string(b)
	case 4:
		b := make([]byte, 16)
		io.ReadFull(br, b)
		host = net.IP(b).String()
	}
	var port [2]byte
	io.ReadFull(br, port[:])
	u.record(host)
	out, err := net.Dial("tcp", u.tunnelTo(strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))))
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	reply := []byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0}
	binary.BigEndian.PutUint16(reply[8:], 1080)
	c.Write(reply)
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		out.Write(b)
	}
	u.mu.Lock()
	u.conns = append(u.conns, out)
	u.mu.Unlock()
	relay(c, out)
}

func (u *upstream) url(scheme string) string { return scheme + "://" + u.ln.Addr().String() }

// insecure trusts any certificate: the origin's is for 127.0.0.1, not the test names.
var insecure = &tls.Config{InsecureSkipVerify: true}
