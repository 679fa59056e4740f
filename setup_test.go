package browserd_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// fakeProxies is a bb.ProxyStarter whose proxies only count what the test tells them.
type fakeProxies struct {
	mu      sync.Mutex
	started []*fakeProxy
	err     error
}

type fakeProxy struct {
	plan   bb.NetworkPlan
	bytes  atomic.Int64
	closed atomic.Bool
	served atomic.Int64
}

func (f *fakeProxy) ServeConn(c net.Conn) error {
	f.served.Add(1)
	return c.Close()
}
func (f *fakeProxy) Bytes() int64 { return f.bytes.Load() }
func (f *fakeProxy) Close() error { f.closed.Store(true); return nil }
func (f *fakeProxies) last() *fakeProxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started[len(f.started)-1]
}

func (f *fakeProxies) StartProxy(id string, plan bb.NetworkPlan) (bb.SessionProxy, error) {
	if f.err != nil {
		return nil, f.err
	}
	p := &fakeProxy{plan: plan}
	f.mu.Lock()
	f.started = append(f.started, p)
	f.mu.Unlock()
	return p, nil
}

// fakeEmulator records the emulations it was asked for.
type fakeEmulator struct {
	mu     sync.Mutex
	got    []bb.Emulation
	closed int
	err    error
}

func (f *fakeEmulator) Emulate(ctx context.Context, b bb.Browser, e bb.Emulation) (io.Closer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.got = append(f.got, e)
	return closerFunc(func() error { f.mu.Lock(); f.closed++; f.mu.Unlock(); return nil }), nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

func decodeReq(t *testing.T, body string) bb.CreateSessionRequest {
	t.Helper()
	req, err := bb.DecodeCreateSessionRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func setupEnv(t *testing.T, proxies *fakeProxies, em *fakeEmulator) *testEnv {
	t.Helper()
	cfg := bb.ManagerConfig{Setup: bb.SetupConfig{ChromeVersion: "156.0.1.2", BytesInterval: 10 * time.Millisecond}}
	if proxies != nil {
		cfg.Setup.Proxies = proxies
	}
	if em != nil {
		cfg.Setup.Emulator = em
	}
	return newEnv(t, 10, nil, cfg)
}

func TestSetupProxies(t *testing.T) {
	proxies := &fakeProxies{}
	e := setupEnv(t, proxies, &fakeEmulator{})
	s := e.create(t, decodeReq(t, `{"proxies":[{"type":"external","server":"http://up:1","username":"u","password":"secret-pw"}],"browserSettings":{"blockAds":true}}`))
	p := proxies.last()
	if !p.plan.BlockAds || !p.plan.Proxied() || p.plan.Route("x").Password != "secret-pw" {
		t.Errorf("plan %+v", p.plan)
	}
	// The proxy is the browser's way out (SetEgress), not a launch flag: a warm browser
	// serves a session with proxies too.
	args := e.l.Browsers()[0].Options().Args
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--proxy") }) {
		t.Errorf("args %q have proxy flags", args)
	}
	egress := e.l.Browsers()[0].Egress()
	if egress == nil {
		t.Fatal("the browser got no egress")
	}
	c1, c2 := net.Pipe()
	egress(c1)
	c2.Close()
	if p.served.Load() != 1 {
		t.Errorf("the session proxy served %d browser connections; want 1", p.served.Load())
	}
	if strings.Contains(strings.Join(args, " "), "secret-pw") || strings.Contains(strings.Join(args, " "), "up:1") {
		t.Errorf("args %q show the upstream", args)
	}
	// Periodic flush.
	p.bytes.Store(1234)
	deadline := time.Now().Add(10 * time.Second)
	for e.stored(t, s.ID).ProxyBytes != 1234 {
		if time.Now().After(deadline) {
			t.Fatalf("proxyBytes = %d; want 1234 flushed", e.stored(t, s.ID).ProxyBytes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Final bytes come with the end.
	p.bytes.Store(5000)
	ended, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ended.ProxyBytes != 5000 || !p.closed.Load() {
		t.Errorf("released: proxyBytes %d, proxy closed %v; want 5000, true", ended.ProxyBytes, p.closed.Load())
	}
	u, err := e.m.Usage(t.Context(), e.p.ID, e.p.ID)
	if err != nil || u.ProxyBytes != 5000 {
		t.Errorf("usage %+v, %v; want proxyBytes 5000", u, err)
	}
}

func TestSetupRefusals(t *testing.T) {
	tests := []struct {
		name, body string
		proxies    *fakeProxies
		em         *fakeEmulator
		wantMsg    string
	}{
		{name: "managed without upstreams", body: `{"proxies":true}`, proxies: &fakeProxies{}, wantMsg: "no managed proxies"},
		{name: "no proxy support", body: `{"browserSettings":{"blockAds":true}}`, wantMsg: "cannot run session proxies"},
		{name: "no emulator", body: `{"browserSettings":{"os":"mac"}}`, wantMsg: "cannot emulate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setupEnv(t, tt.proxies, tt.em)
			_, err := e.m.CreateSession(t.Context(), e.p.ID, decodeReq(t, tt.body))
			if bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("CreateSession: %v; want CodeInvalid %q", err, tt.wantMsg)
			}
			if got, _ := e.m.Sessions(t.Context(), e.p.ID, bb.SessionFilter{}); len(got) != 0 || e.l.Launched() != 0 {
				t.Errorf("refused create left %d sessions, %d launches", len(got), e.l.Launched())
			}
		})
	}
}

func TestSetupEmulation(t *testing.T) {
	em := &fakeEmulator{}
	e := setupEnv(t, &fakeProxies{}, em)
	plain := e.create(t, decodeReq(t, `{}`))
	if args := e.l.Browsers()[0].Options().Args; !slices.Equal(args, []string{"--disk-cache-size=67108864"}) {
		t.Errorf("a plain session launched with %q; want only --disk-cache-size", args)
	}
	s := e.create(t, decodeReq(t, `{"browserSettings":{"os":"windows","allowedDomains":["a.com"],"ignoreCertificateErrors":true}}`))
	args := e.l.Browsers()[1].Options().Args
	for _, want := range []string{"--ignore-certificate-errors", "--disable-blink-features=AutomationControlled",
		"--user-agent=Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--proxy-server") }) {
		t.Errorf("args %q have a proxy flag", args)
	}
	// Every session has a proxy: the only way out of its browser's sandbox.
	for _, b := range e.l.Browsers() {
		if b.Egress() == nil {
			t.Errorf("browser %d has no egress", b.PID())
		}
	}
	em.mu.Lock()
	got := em.got
	em.mu.Unlock()
	if len(got) != 1 || got[0].Profile.OS != "windows" || !slices.Equal(got[0].AllowedDomains, []string{"a.com"}) {
		t.Errorf("emulations %+v", got)
	}
	for _, id := range []string{plain.ID, s.ID} {
		if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.closed != 1 {
		t.Errorf("%d agents closed; want 1", em.closed)
	}
}

func TestSetupFailures(t *testing.T) {
	t.Run("proxy", func(t *testing.T) {
		e := setupEnv(t, &fakeProxies{err: errors.New("no ports")}, nil)
		_, err := e.m.CreateSession(t.Context(), e.p.ID, decodeReq(t, `{"browserSettings":{"blockAds":true}}`))
		if err == nil || e.l.Live() != 0 {
			t.Fatalf("CreateSession: %v, %d browsers live; want an error and no browser left", err, e.l.Live())
		}
		ss, _ := e.m.Sessions(t.Context(), e.p.ID, bb.SessionFilter{})
		if len(ss) != 1 || ss[0].Status != bb.StatusError {
			t.Errorf("sessions %+v; want one ERROR", ss)
		}
	})
	t.Run("emulator", func(t *testing.T) {
		proxies := &fakeProxies{}
		e := setupEnv(t, proxies, &fakeEmulator{err: errors.New("devtools gone")})
		_, err := e.m.CreateSession(t.Context(), e.p.ID, decodeReq(t, `{"proxies":[{"type":"none"}],"browserSettings":{"os":"linux"}}`))
		if err == nil {
			t.Fatal("CreateSession succeeded; want the emulator's error")
		}
		if e.l.Live() != 0 || !proxies.last().closed.Load() {
			t.Errorf("after a failed setup: %d browsers live, proxy closed %v", e.l.Live(), proxies.last().closed.Load())
		}
	})
}
