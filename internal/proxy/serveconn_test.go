package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

// TestServeConn serves connections handed over as net.Conns (a net.Pipe and a unix
// socketpair, as the sandbox hands them over) and closes them with the proxy.
func TestServeConn(t *testing.T) {
	o := startOrigins(t)
	p, err := New("sess-1", bb.NetworkPlan{}, Config{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Addr() != "" {
		t.Errorf("Addr() = %q without a listener", p.Addr())
	}
	client, server := net.Pipe()
	defer client.Close()
	if err := p.ServeConn(server); err != nil {
		t.Fatal(err)
	}
	req := "GET http://" + o.plain + "/pipe HTTP/1.1\r\nHost: " + o.plain + "\r\n\r\n"
	if code, _, body := roundTrip(t, client, req); code != 200 || body != "origin "+o.plain+" /pipe" {
		t.Errorf("GET over a pipe = %d %q", code, body)
	}
	// Keep-alive: a second request on the same handed connection.
	if code, _, body := roundTrip(t, client, get("127.0.0.1:1", "/")); code != 502 {
		t.Errorf("second request = %d %q; want 502 (nothing listens on port 1)", code, body)
	}

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tunnel := fileConn(t, fds[0])
	defer tunnel.Close()
	if err := p.ServeConn(fileConn(t, fds[1])); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := roundTrip(t, tunnel, connect(o.plain)); code != 200 {
		t.Fatalf("CONNECT over a socketpair = %d", code)
	}
	if code, _, body := roundTrip(t, tunnel, "GET /tunnel HTTP/1.1\r\nHost: t.test\r\n\r\n"); code != 200 || body != "origin t.test /tunnel" {
		t.Errorf("GET in the tunnel = %d %q", code, body)
	}

	idle, idleServer := net.Pipe() // handed over, never used
	defer idle.Close()
	if err := p.ServeConn(idleServer); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for name, c := range map[string]net.Conn{"pipe": client, "tunnel": tunnel, "idle": idle} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: Read after Close = %v; want the connection closed", name, err)
		}
	}
	late, lateServer := net.Pipe()
	defer late.Close()
	if err := p.ServeConn(lateServer); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ServeConn after Close = %v; want net.ErrClosed", err)
	}
	late.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := late.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a connection handed after Close: Read = %v; want it closed", err)
	}
}

// TestServeConnRefuses: the policy holds for handed connections too.
func TestServeConnRefuses(t *testing.T) {
	site := startCounting(t)
	p, err := New("sess-1", bb.NetworkPlan{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, server := net.Pipe()
	defer client.Close()
	if err := p.ServeConn(server); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := roundTrip(t, client, connect("127.0.0.1:"+site.port)); code != 403 {
		t.Errorf("CONNECT to loopback over a handed connection = %d; want 403", code)
	}
}

func fileConn(t *testing.T, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close() // FileConn dups the descriptor
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSetPlan: a warm browser's proxy, started with the default plan, takes a session's
// plan; open tunnels keep their route, new connections take the new one.
func TestSetPlan(t *testing.T) {
	o := startOrigins(t)
	a := startHTTPUpstream(t, "A", "", "", o, false)
	p := startProxy(t, bb.NetworkPlan{}, Config{AllowPrivate: true, AdHosts: NewHostSet([]string{"ads.test"})})

	old, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if code, _, _ := roundTrip(t, old, connect(o.plain)); code != 200 {
		t.Fatalf("CONNECT = %d", code)
	}
	routes, err := bb.PlanProxies(rules(t, map[string]any{"type": "external", "server": a.url("http")}), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetPlan("sess-2", bb.NetworkPlan{Routes: routes, BlockAds: true}); err != nil {
		t.Fatal(err)
	}
	if code, _, body := rawRequest(t, p, get("x.test", "/new")); code != 200 || body != "A x.test /new" {
		t.Errorf("GET after SetPlan = %d %q; want it through A", code, body)
	}
	if code, h, _ := rawRequest(t, p, get("ads.test", "/")); code != 403 || h.Get("X-Browserd-Blocked") != "blockAds" {
		t.Errorf("GET an ad host after SetPlan(BlockAds) = %d; want 403", code)
	}
	if code, _, body := roundTrip(t, old, "GET /old HTTP/1.1\r\nHost: old.test\r\n\r\n"); code != 200 || body != "origin old.test /old" {
		t.Errorf("GET in the tunnel opened before SetPlan = %d %q", code, body)
	}
	if diff := cmp.Diff(a.seen(), []string{"x.test"}); diff != "" {
		t.Errorf("A saw (-got +want):\n%s", diff)
	}
	if p.Bytes() == 0 {
		t.Error("Bytes() = 0 after a request through an upstream")
	}
	before := p.Bytes()
	if err := p.SetPlan("sess-2", bb.NetworkPlan{}); err != nil {
		t.Fatal(err)
	}
	if code, _, body := rawRequest(t, p, get(o.plain, "/direct")); code != 200 || !strings.HasPrefix(body, "origin") {
		t.Errorf("GET after SetPlan(direct) = %d %q", code, body)
	}
	if p.Bytes() != before {
		t.Errorf("Bytes() %d → %d after a direct request", before, p.Bytes())
	}

	// A refused upstream leaves the plan as it was.
	var buf syncBuffer
	strict := startProxy(t, bb.NetworkPlan{}, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err := strict.SetPlan("sess-2", bb.NetworkPlan{Routes: routes}); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("SetPlan with a loopback upstream = %v; want CodeInvalid", err)
	}
	if r := strict.routing(); len(r.plan.Routes) != 0 {
		t.Errorf("the plan changed after a refused SetPlan: %+v", r.plan)
	}
	// The log names the session that took the proxy.
	if err := strict.SetPlan("sess-3", bb.NetworkPlan{}); err != nil {
		t.Fatal(err)
	}
	rawRequest(t, strict, get("127.0.0.1:9", "/"))
	if got := buf.String(); !strings.Contains(got, "session_id=sess-3") || strings.Contains(got, "sess-1") {
		t.Errorf("log after SetPlan(sess-3): %s", got)
	}
	strict.Close()
	if err := strict.SetPlan("sess-2", bb.NetworkPlan{}); err == nil {
		t.Error("SetPlan after Close succeeded")
	}
}

// TestDialAddrs: the addresses of a name are tried in order, the next one after a
// failure or after fallbackDelay without an answer (a black-holed address).
func TestDialAddrs(t *testing.T) {
	site := startCounting(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close() // refuses connections now
	live := netip.MustParseAddrPort(site.Listener.Addr().String())
	hole := netip.MustParseAddrPort("127.0.0.66:" + site.port) // black-holed by the dialer below
	d := &net.Dialer{ControlContext: func(ctx context.Context, _, address string, _ syscall.RawConn) error {
		if address == hole.String() {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	tests := []struct {
		name    string
		addrs   []netip.AddrPort
		wantErr bool
	}{
		{name: "refused then live", addrs: []netip.AddrPort{closedAddr, live}},
		{name: "black hole then live", addrs: []netip.AddrPort{hole, live}},
		{name: "live then black hole", addrs: []netip.AddrPort{live, hole}},
		{name: "all refused", addrs: []netip.AddrPort{closedAddr, closedAddr}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			begin := time.Now()
			c, err := dialAddrs(ctx, d, tt.addrs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("dialAddrs = %v, %v; want err=%v", c, err, tt.wantErr)
			}
			if c != nil {
				if got := c.RemoteAddr().String(); got != live.String() {
					t.Errorf("connected to %s; want %s", got, live)
				}
				c.Close()
			}
			if time.Since(begin) > 2*time.Second {
				t.Errorf("took %v", time.Since(begin))
			}
		})
	}
}

// TestSetPlanConcurrent changes the plan while requests run (for the race detector):
// every request is served by one plan or the other, never fails.
func TestSetPlanConcurrent(t *testing.T) {
	o := startOrigins(t)
	a := startHTTPUpstream(t, "A", "", "", o, false)
	p := startProxy(t, bb.NetworkPlan{}, Config{AllowPrivate: true})
	routes, err := bb.PlanProxies(rules(t, map[string]any{"type": "external", "server": a.url("http")}), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pu := &url.URL{Scheme: "http", Host: p.Addr()}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				resp, err := client.Get("http://" + o.plain + "/c")
				if err != nil {
					errs <- err
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !(strings.HasPrefix(string(b), "origin ") || strings.HasPrefix(string(b), "A ")) {
					errs <- fmt.Errorf("GET = %d %q, %v", resp.StatusCode, b, err)
				}
			}
		})
	}
	for i := range 20 {
		plan := bb.NetworkPlan{}
		if i%2 == 0 {
			plan.Routes = routes
		}
		if err := p.SetPlan(fmt.Sprintf("s%d", i), plan); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
