package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

// fakeDNS answers names from a table, as the machine has no DNS; other names fail.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][][]string // per name, the answer of each successive lookup (the last repeats)
	calls   map[string]int
}

func newFakeDNS(answers map[string][]string) *fakeDNS {
	d := &fakeDNS{answers: make(map[string][][]string), calls: make(map[string]int)}
	for name, as := range answers {
		d.answers[name] = [][]string{as}
	}
	return d
}

func (d *fakeDNS) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq, ok := d.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	n := d.calls[host]
	d.calls[host]++
	as := seq[min(n, len(seq)-1)]
	out := make([]netip.Addr, len(as))
	for i, a := range as {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

func (d *fakeDNS) lookups(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[host]
}

// countingServer is a loopback HTTP server that counts its requests.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func startCounting(t *testing.T) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		fmt.Fprintf(w, "reached %s %s", r.Host, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

func startProxy(t *testing.T, plan bb.NetworkPlan, cfg Config) *Proxy {
	t.Helper()
	p, err := Start("sess-1", plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// rawRequest sends req (a whole request, \r\n line ends) on a new connection to the
// proxy and returns the status, a header and the body of the answer.
func rawRequest(t *testing.T, p *Proxy, req string) (int, http.Header, string) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return roundTrip(t, c, req)
}

func roundTrip(t *testing.T, c net.Conn, req string) (int, http.Header, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	if method == http.MethodConnect && resp.StatusCode == 200 {
		return 200, resp.Header, ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: read body: %v", req, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func get(host, path string) string {
	return "GET http://" + host + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

func connect(target string) string {
	return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"
}

// TestPrivateRefused is finding F3 of the security review: with the default policy a
// browser's proxy reached the server's loopback (/metrics, other sessions' DevTools),
// cloud metadata and private networks. Now each way to name such an address is refused.
func TestPrivateRefused(t *testing.T) {
	site := startCounting(t)
	dns := newFakeDNS(map[string][]string{
		"rebind.test":   {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
		"mixed.test":    {"93.184.215.14", "10.0.0.7"}, // one bad address is enough
		"nat64.test":    {"64:ff9b::a00:1"},
	})
	p := startProxy(t, bb.NetworkPlan{}, Config{Resolve: dns.resolve})
	tests := []struct {
		name, req string
		code      int
		kind      string
		want      []string // in the body
	}{
		{name: "loopback", req: get("127.0.0.1:"+site.port, "/metrics"), code: 403, kind: "private-network", want: []string{"127.0.0.1:" + site.port, "loopback"}},
		{name: "other loopback", req: get("127.0.0.2:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"loopback"}},
		{name: "localhost", req: get("localhost:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"localhost", "loopback"}},
		{name: "sub.localhost", req: get("a.localhost:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"loopback"}},
		{name: "name resolving to loopback", req: get("rebind.test:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"rebind.test", "127.0.0.1", "loopback"}},
		{name: "ipv6 loopback", req: get("[::1]:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"::1", "loopback"}},
		{name: "mapped loopback", req: get("[::ffff:127.0.0.1]:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"loopback"}},
		{name: "unspecified", req: get("0.0.0.0:"+site.port, "/"), code: 403, kind: "private-network", want: []string{"unspecified"}},
		{name: "metadata", req: get("169.254.169.254", "/latest/meta-data/"), code: 403, kind: "private-network", want: []string{"cloud metadata"}},
		{name: "metadata by name", req: get("metadata.test", "/"), code: 403, kind: "private-network", want: []string{"169.254.169.254"}},
		{name: "private", req: get("10.1.2.3", "/"), code: 403, kind: "private-network", want: []string{"private network"}},
		{name: "private among public", req: get("mixed.test", "/"), code: 403, kind: "private-network", want: []string{"10.0.0.7"}},
		{name: "nat64 private", req: get("nat64.test", "/"), code: 403, kind: "private-network", want: []string{"64:ff9b::a00:1"}},
		{name: "cgnat", req: get("100.100.100.200", "/"), code: 403, kind: "private-network", want: []string{"carrier-grade"}},
		{name: "decimal", req: get("2130706433:"+site.port, "/"), code: 400, kind: "invalid-host"},
		{name: "hex", req: get("0x7f.1:"+site.port, "/"), code: 400, kind: "invalid-host"},
		{name: "octal", req: get("0177.0.0.1:"+site.port, "/"), code: 400, kind: "invalid-host"},
		{name: "short", req: get("127.1:"+site.port, "/"), code: 400, kind: "invalid-host"},
		{name: "connect loopback", req: connect("127.0.0.1:" + site.port), code: 403, kind: "private-network"},
		{name: "connect localhost", req: connect("localhost:" + site.port), code: 403, kind: "private-network"},
		{name: "connect ipv6 loopback", req: connect("[::1]:" + site.port), code: 403, kind: "private-network"},
		{name: "connect metadata", req: connect("169.254.169.254:80"), code: 403, kind: "private-network"},
		{name: "connect private", req: connect("10.0.0.1:443"), code: 403, kind: "private-network"},
		{name: "connect name resolving to loopback", req: connect("rebind.test:" + site.port), code: 403, kind: "private-network"},
		{name: "connect hex", req: connect("0x7f000001:443"), code: 400, kind: "invalid-host"},
		{name: "connect zone", req: connect("[fe80::1%25eth0]:443"), code: 400, kind: "invalid-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := rawRequest(t, p, tt.req)
			if code != tt.code || h.Get("X-Browserd-Blocked") != tt.kind {
				t.Fatalf("status %d, X-Browserd-Blocked %q (%s); want %d %q", code, h.Get("X-Browserd-Blocked"), body, tt.code, tt.kind)
			}
			if got := h.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			want := tt.want
			if tt.kind == "private-network" {
				want = append(want, "--allow-private-networks", "BROWSERD_ALLOW_PRIVATE_NETWORKS=true")
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("the page does not say %q:\n%s", w, body)
				}
			}
		})
	}
	if n := site.hits.Load(); n != 0 {
		t.Errorf("the loopback site was reached %d times", n)
	}
}

// TestDNSRebinding checks that a connection dials the address that was checked: the
// name is resolved once, so a second answer (127.0.0.1) never reaches the dialer.
func TestDNSRebinding(t *testing.T) {
	dns := &fakeDNS{answers: map[string][][]string{"rebind.test": {{"93.184.215.14"}, {"127.0.0.1"}}}, calls: map[string]int{}}
	var mu sync.Mutex
	var dialled []string
	cfg := Config{Resolve: dns.resolve, dialControl: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		mu.Lock()
		dialled = append(dialled, address)
		mu.Unlock()
		return errors.New("test: offline") // the machine has no route out anyway
	}}
	p := startProxy(t, bb.NetworkPlan{}, cfg)
	code, h, body := rawRequest(t, p, get("rebind.test", "/"))
	if code != http.StatusBadGateway {
		t.Fatalf("first GET = %d %s; want 502 (the public address is unreachable)", code, body)
	}
	// The 502 says why, in its body and header, and is not marked nosniff: Chromium's
	// opaque response blocking would drop it for an image request (ERR_BLOCKED_BY_ORB),
	// and the page's logs would not say why.
	if !strings.Contains(h.Get("X-Browserd-Proxy-Error"), "cannot reach rebind.test") || !strings.Contains(body, "test: offline") ||
		h.Get("X-Content-Type-Options") != "" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("502 headers %v body %q; want the reason in X-Browserd-Proxy-Error and the body, text/plain, no nosniff", h, body)
	}
	mu.Lock()
	got := dialled
	mu.Unlock()
	if diff := cmp.Diff(got, []string{"93.184.215.14:80"}); diff != "" {
		t.Errorf("dialled (-got +want):\n%s", diff)
	}
	if n := dns.lookups("rebind.test"); n != 1 {
		t.Errorf("%d lookups for one connection; want 1", n)
	}
	// The next connection resolves again and sees the new answer: refused.
	if code, h, _ := rawRequest(t, p, connect("rebind.test:443")); code != 403 || h.Get("X-Browserd-Blocked") != "private-network" {
		t.Errorf("CONNECT after the rebind = %d %q; want 403", code, h.Get("X-Browserd-Blocked"))
	}
}

// TestAllowPrivate: with private networks allowed, loopback sites are reachable, but
// not the server's own ports, by any loopback, unspecified or local address.
func TestAllowPrivate(t *testing.T) {
	site := startCounting(t)
	api := startCounting(t)
	reserved := new(bb.ReservedPorts)
	defer reserved.ReserveAddr(api.Listener.Addr())()
	dns := newFakeDNS(map[string][]string{"site.test": {"127.0.0.1"}, "api.test": {"127.0.0.1"}})
	cfg := Config{Resolve: dns.resolve, AllowPrivate: true, Reserved: reserved}
	p := startProxy(t, bb.NetworkPlan{}, cfg)
	other := startProxy(t, bb.NetworkPlan{}, cfg) // another session's proxy
	for _, host := range []string{"127.0.0.1:" + site.port, "localhost:" + site.port, "site.test:" + site.port} {
		if code, _, body := rawRequest(t, p, get(host, "/ok")); code != 200 || !strings.HasPrefix(body, "reached") {
			t.Errorf("GET %s = %d %q; want 200 from the site", host, code, body)
		}
		if code, _, _ := rawRequest(t, p, connect(host)); code != 200 {
			t.Errorf("CONNECT %s = %d; want 200", host, code)
		}
	}
	_, otherPort, _ := net.SplitHostPort(other.Addr())
	_, ownPort, _ := net.SplitHostPort(p.Addr())
	for _, target := range []string{"127.0.0.1:" + api.port, "127.0.0.2:" + api.port, "localhost:" + api.port,
		"api.test:" + api.port, "[::ffff:127.0.0.1]:" + api.port, "0.0.0.0:" + api.port, "[::1]:" + api.port,
		"127.0.0.1:" + otherPort, "127.0.0.1:" + ownPort} {
		for _, req := range []string{get(target, "/metrics"), connect(target)} {
			code, h, body := rawRequest(t, p, req)
			if code != 403 || h.Get("X-Browserd-Blocked") != "server-port" {
				t.Errorf("%q = %d %q %q; want 403 server-port", req, code, h.Get("X-Browserd-Blocked"), body)
			}
		}
	}
	// The machine's own addresses reach listeners on 0.0.0.0 too.
	local, err := interfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range local {
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			continue
		}
		target := netip.AddrPortFrom(a, mustPort(t, api.port)).String()
		if code, h, _ := rawRequest(t, p, connect(target)); code != 403 || h.Get("X-Browserd-Blocked") != "server-port" {
			t.Errorf("CONNECT %s (a local address) = %d %q; want 403 server-port", target, code, h.Get("X-Browserd-Blocked"))
		}
	}
	if n := api.hits.Load(); n != 0 {
		t.Errorf("the server's own port was reached %d times", n)
	}
	// A released port is an ordinary loopback port again.
	other.Close()
	if reserved.Contains(mustPort(t, otherPort)) {
		t.Errorf("a closed proxy's port %s is still reserved", otherPort)
	}
}

func mustPort(t *testing.T, s string) uint16 {
	t.Helper()
	var n uint16
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDestination(t *testing.T) {
	reserved := new(bb.ReservedPorts)
	defer reserved.Reserve(8080)()
	dns := newFakeDNS(map[string][]string{"own.test": {"198.51.100.20"}, "pub.test": {"8.8.8.8", "2606:4700::1"}})
	local := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.20"), netip.MustParseAddr("8.8.4.4")}, nil
	}
	tests := []struct {
		target       string
		allowPrivate bool
		upstream     bool
		want         []string
		wantBlocked  *BlockedError
	}{
		{target: "pub.test:443", want: []string{"8.8.8.8:443", "[2606:4700::1]:443"}},
		{target: "8.8.8.8:8080", want: []string{"8.8.8.8:8080"}},
		{target: "[::ffff:8.8.8.8]:80", want: []string{"8.8.8.8:80"}}, // dialled unmapped
		{target: "8.8.4.4:8080", wantBlocked: &BlockedError{Host: "8.8.4.4", Port: 8080, Addr: netip.MustParseAddr("8.8.4.4"), Class: Public, ServerPort: true}},
		{target: "8.8.4.4:8081", want: []string{"8.8.4.4:8081"}},
		{target: "own.test:8080", allowPrivate: true, wantBlocked: &BlockedError{Host: "own.test", Port: 8080, Addr: netip.MustParseAddr("198.51.100.20"), Class: Reserved, ServerPort: true}},
		{target: "own.test:80", allowPrivate: true, want: []string{"198.51.100.20:80"}},
		{target: "own.test:80", wantBlocked: &BlockedError{Host: "own.test", Port: 80, Addr: netip.MustParseAddr("198.51.100.20"), Class: Reserved}},
		{target: "127.0.0.9:8080", allowPrivate: true, upstream: true, wantBlocked: &BlockedError{Host: "127.0.0.9", Port: 8080, Addr: netip.MustParseAddr("127.0.0.9"), Class: Loopback, Upstream: true, ServerPort: true}},
		{target: "[fe80::1]:80", wantBlocked: &BlockedError{Host: "fe80::1", Port: 80, Addr: netip.MustParseAddr("fe80::1"), Class: LinkLocal}},
		{target: "example.test", wantBlocked: &BlockedError{Host: "example.test", BadHost: true}},
		{target: "example.test:0", wantBlocked: &BlockedError{Host: "example.test:0", BadHost: true}},
		{target: "example.test:99999", wantBlocked: &BlockedError{Host: "example.test:99999", BadHost: true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow=%v", tt.target, tt.allowPrivate), func(t *testing.T) {
			pol := newPolicy(Config{AllowPrivate: tt.allowPrivate, Reserved: reserved, Resolve: dns.resolve})
			pol.localAddrs = local
			got, err := pol.destination(t.Context(), tt.target, tt.upstream)
			if tt.wantBlocked != nil {
				be, ok := errors.AsType[*BlockedError](err)
				if !ok {
					t.Fatalf("destination = %v, %v; want blocked", got, err)
				}
				if diff := cmp.Diff(be, tt.wantBlocked, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("blocked (-got +want):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, ap := range got {
				gotS = append(gotS, ap.String())
			}
			if diff := cmp.Diff(gotS, tt.want); diff != "" {
				t.Errorf("destination (-got +want):\n%s", diff)
			}
		})
	}
	pol := newPolicy(Config{Resolve: dns.resolve})
	if _, err := pol.destination(t.Context(), "nxdomain.test:80", false); err == nil || errors.As(err, new(*BlockedError)) {
		t.Errorf("unknown name: %v; want a resolution error", err)
	}
}

// TestUpstreamPolicy: an upstream proxy a client names (type "external") must not be in
// the server's networks either; the operator's managed upstreams are trusted.
func TestUpstreamPolicy(t *testing.T) {
	o := startOrigins(t)
	a := startHTTPUpstream(t, "A", "", "", o, false)
	c := startSOCKSUpstream(t, "C", "carol", "pw", o)
	_, aPort, _ := net.SplitHostPort(a.ln.Addr().String())
	_, cPort, _ := net.SplitHostPort(c.ln.Addr().String())
	dns := newFakeDNS(map[string][]string{"upstream.test": {"127.0.0.1"}})

	// Addresses are refused when the session is created.
	for _, server := range []string{a.url("http"), "socks5://localhost:1080", "http://10.0.0.1:3128", "https://[::1]:443", "http://0x7f.1:80"} {
		routes, err := bb.PlanProxies(rules(t, map[string]any{"type": "external", "server": server}), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Start("s", bb.NetworkPlan{Routes: routes}, Config{Resolve: dns.resolve})
		if bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(err.Error(), "proxy server") {
			t.Errorf("Start with upstream %s: %v; want CodeInvalid", server, err)
		}
	}

	// Names are refused when they resolve, with the credentials nowhere.
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	routes, err := bb.PlanProxies(rules(t,
		map[string]any{"type": "external", "server": "http://user:SECRETPW@upstream.test:" + aPort},
		map[string]any{"type": "external", "server": "socks5://carol:SECRETPW@upstream.test:" + cPort, "domainPattern": `.*\.socks\.test`},
	), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, bb.NetworkPlan{Routes: routes}, Config{Resolve: dns.resolve, Logger: log})
	for _, req := range []string{get("site.test", "/"), connect("site.test:443"), get("x.socks.test", "/"), connect("x.socks.test:443")} {
		code, h, body := rawRequest(t, p, req)
		if code != 403 || h.Get("X-Browserd-Blocked") != "private-network" {
			t.Errorf("%q = %d %q; want 403", req, code, h.Get("X-Browserd-Blocked"))
		}
		if !strings.HasPrefix(req, "CONNECT") && !strings.Contains(body, "proxy server upstream.test") {
			t.Errorf("%q: the page does not name the upstream:\n%s", req, body)
		}
		if strings.Contains(body+fmt.Sprint(h), "SECRETPW") {
			t.Errorf("%q: the answer shows the password", req)
		}
	}
	if got := append(a.seen(), c.seen()...); len(got) != 0 {
		t.Errorf("refused upstreams were reached for %v", got)
	}
	if strings.Contains(logBuf.String(), "SECRETPW") {
		t.Errorf("the log shows the password:\n%s", logBuf.String())
	}

	// Managed upstreams may be anywhere, loopback included.
	routes, err = bb.PlanProxies(decodeReq(t, `{"proxies":true}`), []bb.ProxyUpstream{{Scheme: "http", Host: a.ln.Addr().String()}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p = startProxy(t, bb.NetworkPlan{Routes: routes}, Config{Resolve: dns.resolve})
	if code, _, body := rawRequest(t, p, get("site.test", "/m")); code != 200 || body != "A site.test /m" {
		t.Errorf("GET through the managed upstream = %d %q", code, body)
	}
	if code, _, _ := rawRequest(t, p, connect("site.test:443")); code != 200 {
		t.Errorf("CONNECT through the managed upstream = %d", code)
	}
}

func decodeReq(t *testing.T, body string) bb.CreateSessionRequest {
	t.Helper()
	req, err := bb.DecodeCreateSessionRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusedLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := startProxy(t, bb.NetworkPlan{}, Config{Logger: log})
	for range 3 {
		rawRequest(t, p, get("127.0.0.1:9", "/?token=SECRET"))
	}
	rawRequest(t, p, connect("169.254.169.254:80"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d warnings; want one per host:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"level=WARN", "session_id=sess-1", "host=127.0.0.1", "class=loopback", "--allow-private-networks", "BROWSERD_ALLOW_PRIVATE_NETWORKS=true"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the warning does not say %q: %s", want, lines[0])
		}
	}
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("the log shows the URL's query: %s", buf.String())
	}

	// Past the cap of hosts, one warning a minute.
	var l refusedLog
	now := time.Unix(1e9, 0)
	n := 0
	for i := range maxRefusedHosts + 50 {
		if l.first(fmt.Sprintf("h%d", i), now) {
			n++
		}
	}
	if n != maxRefusedHosts+1 {
		t.Errorf("%d warnings for %d hosts at once; want %d", n, maxRefusedHosts+50, maxRefusedHosts+1)
	}
	if !l.first("late", now.Add(time.Minute)) || l.first("later", now.Add(time.Minute+time.Second)) {
		t.Error("past the cap: want one warning a minute")
	}
}
