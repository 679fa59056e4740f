package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

// testRig is a proxy with four upstreams: a (HTTP, no auth, also the default), b (HTTP,
// basic auth), c (SOCKS5, auth) and d (HTTPS proxy).
type testRig struct {
	o          origins
	a, b, c, d *upstream
	p          *Proxy
	client     *http.Client
}

func rules(t *testing.T, rs ...map[string]any) bb.CreateSessionRequest {
	t.Helper()
	body, err := json.Marshal(map[string]any{"proxies": rs})
	if err != nil {
		t.Fatal(err)
	}
	req, err := bb.DecodeCreateSessionRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func newRig(t *testing.T, blockAds *HostSet) *testRig {
	t.Helper()
	r := &testRig{o: startOrigins(t)}
	r.a = startHTTPUpstream(t, "A", "", "", r.o, false)
	r.b = startHTTPUpstream(t, "B", "bob", "s3cret", r.o, false)
	r.c = startSOCKSUpstream(t, "C", "carol", "pw", r.o)
	r.d = startHTTPUpstream(t, "D", "", "", r.o, true)
	req := rules(t,
		map[string]any{"type": "external", "server": r.a.url("http")},
		map[string]any{"type": "external", "server": r.a.url("http"), "domainPattern": `.*\.a\.test`},
		map[string]any{"type": "external", "server": r.b.url("http"), "username": "bob", "password": "s3cret", "domainPattern": `(.*\.)?b\.test`},
		map[string]any{"type": "external", "server": r.b.url("http"), "username": "bob", "password": "wrong", "domainPattern": `bad\.test`},
		map[string]any{"type": "external", "server": "socks5://carol:pw@" + r.c.ln.Addr().String(), "domainPattern": `.*\.c\.test`},
		map[string]any{"type": "external", "server": "socks5://carol:nope@" + r.c.ln.Addr().String(), "domainPattern": `badsocks\.test`},
		map[string]any{"type": "external", "server": r.d.url("https"), "domainPattern": `d\.test`},
		map[string]any{"type": "none", "domainPattern": `127\.0\.0\.1`},
	)
	routes, err := bb.PlanProxies(req, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The HTTPS upstream's certificate is httptest's, for 127.0.0.1.
	pool := x509.NewCertPool()
	pool.AddCert(r.d.cert)
	// The origins and upstreams are on loopback.
	cfg := Config{AdHosts: blockAds, TLS: &tls.Config{RootCAs: pool}, AllowPrivate: true}
	p, err := Start("test", bb.NetworkPlan{Routes: routes, BlockAds: blockAds != nil}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	r.p = p
	pu := &url.URL{Scheme: "http", Host: p.Addr()}
	r.client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: insecure, DisableKeepAlives: true}, Timeout: 20 * time.Second}
	return r
}

func (r *testRig) get(t *testing.T, u string) (int, string, error) {
	t.Helper()
	resp, err := r.client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestRoutes(t *testing.T) {
	r := newRig(t, nil)
	direct := "http://" + r.o.plain + "/d"
	tests := []struct {
		url, want string
		via       *upstream
	}{
		{url: "http://x.a.test/p", want: "A x.a.test /p", via: r.a},
		{url: "https://x.a.test/p", want: "origin x.a.test /p", via: r.a},
		{url: "http://b.test/", want: "B b.test /", via: r.b},
		{url: "https://www.b.test/s", want: "origin www.b.test /s", via: r.b},
		{url: "http://s.c.test/p", want: "origin s.c.test /p", via: r.c},
		{url: "https://s.c.test/q", want: "origin s.c.test /q", via: r.c},
		{url: "http://d.test/", want: "D d.test /", via: r.d},
		{url: "https://d.test/x", want: "origin d.test /x", via: r.d},
		{url: "http://other.test/", want: "A other.test /", via: r.a},
		{url: direct, want: "origin " + r.o.plain + " /d"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			before := map[*upstream]int{r.a: len(r.a.seen()), r.b: len(r.b.seen()), r.c: len(r.c.seen()), r.d: len(r.d.seen())}
			code, body, err := r.get(t, tt.url)
			if err != nil || code != 200 || body != tt.want {
				t.Fatalf("GET %s = %d %q, %v; want 200 %q", tt.url, code, body, err, tt.want)
			}
			for u, n := range before {
				got := len(u.seen()) - n
				if want := 0; u == tt.via {
					if got != 1 {
						t.Errorf("upstream %s saw %d requests; want 1", u.name, got)
					}
				} else if got != want {
					t.Errorf("upstream %s saw %v; want nothing", u.name, u.seen()[n:])
				}
			}
		})
	}
}

func TestUpstreamAuthFailure(t *testing.T) {
	r := newRig(t, nil)
	for _, u := range []string{"http://bad.test/", "http://badsocks.test/"} {
		code, body, err := r.get(t, u)
		if err != nil || code != http.StatusBadGateway || !strings.Contains(body, "refused the credentials") {
			t.Errorf("GET %s = %d %q, %v; want 502 saying the credentials were refused", u, code, body, err)
		}
		if strings.Contains(body, "wrong") || strings.Contains(body, "nope") {
			t.Errorf("the error shows the password: %q", body)
		}
	}
	// Through CONNECT the client sees the 502 as the tunnel's failure.
	_, _, err := r.get(t, "https://bad.test/")
	if err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
		t.Errorf("GET https://bad.test/: %v; want a Bad Gateway error", err)
	}
}

func TestBlockAds(t *testing.T) {
	r := newRig(t, NewHostSet([]string{"ads.test", "tracker.a.test"}))
	for _, u := range []string{"http://ads.test/x", "http://x.ads.test/", "http://tracker.a.test/"} {
		code, body, err := r.get(t, u)
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, "blockAds") {
			t.Errorf("GET %s = %d %q, %v; want 403 blockAds", u, code, body, err)
		}
	}
	if _, _, err := r.get(t, "https://cdn.ads.test/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to an ad host: %v; want Forbidden", err)
	}
	if code, _, err := r.get(t, "http://notads.test/"); err != nil || code != 200 {
		t.Errorf("GET notads.test = %d, %v; want 200", code, err)
	}
	if got := r.a.seen(); slices.ContainsFunc(got, func(h string) bool { return strings.Contains(h, "ads.test") && h != "notads.test" }) {
		t.Errorf("a blocked host reached the upstream: %v", got)
	}
}

func TestBytes(t *testing.T) {
	r := newRig(t, nil)
	if n := r.p.Bytes(); n != 0 {
		t.Fatalf("Bytes() = %d before any request", n)
	}
	const mib = 1 << 20
	for _, u := range []string{"http://" + r.o.plain + "/big"} {
		if code, body, err := r.get(t, u); err != nil || code != 200 || len(body) != mib {
			t.Fatalf("GET %s = %d, %d bytes, %v", u, code, len(body), err)
		}
	}
	if n := r.p.Bytes(); n != 0 {
		t.Errorf("Bytes() = %d after a direct request; want 0", n)
	}
	for _, u := range []string{"http://x.a.test/big", "https://x.c.test/big", "https://d.test/big"} {
		if code, body, err := r.get(t, u); err != nil || code != 200 || len(body) != mib {
			t.Fatalf("GET %s = %d, %d bytes, %v", u, code, len(body), err)
		}
	}
	if n := r.p.Bytes(); n < 3*mib || n > 3*mib+64<<10 {
		t.Errorf("Bytes() = %d after 3 MiB through upstreams; want 3 MiB plus headers and handshakes", n)
	}
}

func TestClose(t *testing.T) {
	o := startOrigins(t)
	a := startHTTPUpstream(t, "A", "", "", o, false)
	routes, err := bb.PlanProxies(rules(t, map[string]any{"type": "external", "server": a.url("http")}), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start("test", bb.NetworkPlan{Routes: routes}, Config{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	// An open tunnel, idle.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT x.test:443 HTTP/1.1\r\nHost: x.test:443\r\n\r\n")
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
		t.Fatalf("CONNECT answer %q, %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a tunnel open")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("the tunnel is still open after Close")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
}

func TestHostSet(t *testing.T) {
	s := NewHostSet([]string{"Ads.Example.com", ".tracker.net.", ""})
	for host, want := range map[string]bool{
		"ads.example.com": true, "a.b.ads.example.com": true, "ADS.EXAMPLE.COM.": true,
		"bads.example.com": false, "example.com": false, "tracker.net": true, "x.tracker.net": true, "net": false, "": false,
	} {
		if got := s.Contains(host); got != want {
			t.Errorf("Contains(%q) = %v; want %v", host, got, want)
		}
	}
	var none *HostSet
	if none.Contains("ads.example.com") || none.Len() != 0 {
		t.Error("a nil HostSet contains something")
	}
	ads, err := AdHosts()
	if err != nil {
		t.Fatal(err)
	}
	if ads.Len() < 10000 {
		t.Errorf("AdHosts has %d hosts; want the EasyList host rules (tens of thousands)", ads.Len())
	}
	got := map[string]bool{}
	for _, h := range []string{"pagead2.googlesyndication.com", "x.ad.doubleclick.net", "example.com", "wikipedia.org"} {
		got[h] = ads.Contains(h)
	}
	want := map[string]bool{"pagead2.googlesyndication.com": true, "x.ad.doubleclick.net": true, "example.com": false, "wikipedia.org": false}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("AdHosts (-got +want):\n%s", diff)
	}
}

func FuzzReadSocksReply(f *testing.F) {
	for _, s := range [][]byte{
		{5, 0, 0, 1, 127, 0, 0, 1, 4, 56},
		{5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80},
		append([]byte{5, 0, 0, 4}, make([]byte, 18)...),
		{5, 5, 0, 1}, {5, 0, 0, 9}, {4, 0}, {5, 0, 0, 3, 200},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		addr, err := readSocksReply(r)
		if err != nil {
			return
		}
		if len(b) < 4 || b[0] != 5 || b[1] != 0 {
			t.Fatalf("accepted %x", b)
		}
		// The bound address is only informational: a host (as sent) and a port.
		if i := strings.LastIndexByte(addr, ':'); i < 0 || strings.Trim(addr[i+1:], "0123456789") != "" || addr[i+1:] == "" {
			t.Fatalf("address %q has no port", addr)
		}
		if consumed := len(b) - r.Len(); consumed < 10 && b[3] != socksAtypDomain {
			t.Fatalf("consumed %d bytes of %x", consumed, b)
		}
	})
}

func TestSocksHandshakeErrors(t *testing.T) {
	o := startOrigins(t)
	c := startSOCKSUpstream(t, "C", "carol", "pw", o)
	d := &dialer{timeout: 5 * time.Second, bytes: new(atomic.Int64), pol: newPolicy(Config{AllowPrivate: true})}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct {
		user, pass string
		wantAuth   bool
	}{{"carol", "bad", true}, {"", "", true}} {
		_, err := d.dial(ctx, &bb.ProxyUpstream{Scheme: "socks5", Host: c.ln.Addr().String(), Username: tt.user, Password: tt.pass}, "x.test:443")
		if err == nil || (tt.wantAuth != strings.Contains(err.Error(), ErrUpstreamAuth.Error())) {
			t.Errorf("dial with %q/%q: %v; want an authentication error", tt.user, tt.pass, err)
		}
	}
	conn, err := d.dial(ctx, &bb.ProxyUpstream{Scheme: "socks5", Host: c.ln.Addr().String(), Username: "carol", Password: "pw"}, "[::1]:80")
	if err != nil {
		t.Fatalf("dial an IPv6 target: %v", err)
	}
	conn.Close()
	if got := c.seen(); !slices.Contains(got, "::1") {
		t.Errorf("socks upstream saw %v; want ::1", got)
	}
}
