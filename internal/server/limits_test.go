package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string // a part of the error; "" for none
	}{
		{name: "empty: generated", in: ""},
		{name: "generated key", in: "bb_ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijk"},
		{name: "hex", in: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{name: "tests' key", in: testAPIKey},
		{name: "20 characters", in: "a1b2c3d4e5f6g7h8i9j0"},
		{name: "19 characters", in: "a1b2c3d4e5f6g7h8i9j", wantErr: "at least 20 characters"},
		{name: "change-me", in: "change-me", wantErr: "at least 20"},
		{name: "long placeholder", in: "please-change-me-1234567890", wantErr: `placeholder (it contains "changeme")`},
		{name: "CHANGE_ME upper case", in: "CHANGE_ME_CHANGE_ME_XYZW", wantErr: "placeholder"},
		{name: "password", in: "my-very-long-Password-2024", wantErr: "placeholder"},
		{name: "repetitive", in: "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", wantErr: "too repetitive"},
		{name: "repetitive pattern", in: "abababababababababababab", wantErr: "too repetitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSecret("api-key", tt.in)
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkSecret(%q) = %v; want an error with %q", tt.in, err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), tt.in) || !strings.Contains(err.Error(), "openssl rand")) {
				t.Errorf("error %q shows the secret or no way to make one", err)
			}
		})
	}
}

// TestWeakKeyRefused starts `browserd serve` with weak operator secrets: it exits at once
// with a usage error that says why, before it opens anything (security review F12).
func TestWeakKeyRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "--api-key change-me", args: []string{"--api-key", "change-me"}, want: "api-key must be at least 20 characters"},
		{name: "BROWSERD_API_KEY", env: map[string]string{"BROWSERD_API_KEY": "secret"}, want: "api-key must be at least 20 characters"},
		{name: "placeholder", args: []string{"--api-key", "change-me-please-0123456789"}, want: "api-key looks like a placeholder"},
		{name: "metrics token", args: []string{"--metrics-token", "scrape-secret"}, want: "metrics-token must be at least 20 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, tt.args...)
			// A server that starts anyway (the old code did) stops when ctx ends, with 0.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			code := run(ctx, args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "openssl rand -hex 32") {
				t.Errorf("serve %s = exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Error("the server started")
			}
		})
	}
}

// authHandler answers 200 to the key "good" and 401 to anything else, as the routes that
// check credentials do.
var authHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-BB-API-Key") != "good" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"statusCode":401,"message":"Unauthorized: invalid API key"}`)
		return
	}
	io.WriteString(w, "ok")
})

func TestAuthLimiter(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := newAuthLimiter(3, time.Minute, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, slog.New(slog.DiscardHandler))
	l.now = func() time.Time { return now }
	h := l.wrap(authHandler)
	do := func(remote, key string, xff ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/sessions", nil)
		r.RemoteAddr = remote
		if key != "" {
			r.Header.Set("X-BB-API-Key", key)
		}
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	const attacker = "192.0.2.7:4000"
	for i := range 3 {
		if w := do(attacker, "guess"); w.Code != 401 {
			t.Fatalf("failure %d = %d; want 401", i+1, w.Code)
		}
	}
	w := do(attacker, "guess")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" || w.Header().Get("x-should-retry") != "false" ||
		w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("failure 4 = %d %v; want 429, Retry-After 60, x-should-retry false", w.Code, w.Header())
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("429 body %q: %v", w.Body, err)
	}
	want := map[string]any{"statusCode": 429.0, "code": 429.0, "error": "Too Many Requests",
		"message": "too many failed authentications from this address; try again in 60 s"}
	if diff := cmp.Diff(body, want); diff != "" {
		t.Errorf("429 body (-got +want):\n%s", diff)
	}
	// A good key from the same address is served, at once.
	if w := do(attacker, "good"); w.Code != 200 || w.Body.String() != "ok" {
		t.Errorf("good key from the limited address = %d %q; want 200", w.Code, w.Body)
	}
	// Another port of the same address is the same client; another address is not.
	if w := do("192.0.2.7:4001", "guess"); w.Code != 429 {
		t.Errorf("same address, other port = %d; want 429", w.Code)
	}
	if w := do("192.0.2.8:4000", "guess"); w.Code != 401 {
		t.Errorf("other address = %d; want 401", w.Code)
	}
	// IPv6: one /64 is one client.
	for i := range 3 {
		do(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1), "guess")
	}
	if w := do("[2001:db8:1:2:ffff::1]:1", "guess"); w.Code != 429 {
		t.Errorf("4th failure from one /64 = %d; want 429", w.Code)
	}
	// The window passes: 401 again, and 20 s before its end Retry-After says 20.
	now = now.Add(time.Minute)
	if w := do(attacker, "guess"); w.Code != 401 {
		t.Errorf("after the window = %d; want 401", w.Code)
	}
	do(attacker, "guess")
	do(attacker, "guess")
	now = now.Add(40 * time.Second)
	if w := do(attacker, "guess"); w.Code != 429 || w.Header().Get("Retry-After") != "20" {
		t.Errorf("late in the window = %d, Retry-After %q; want 429, 20", w.Code, w.Header().Get("Retry-After"))
	}

	// Behind a trusted proxy, X-Forwarded-For names the client: its last untrusted hop.
	// A client cannot choose its key by sending its own X-Forwarded-For.
	for range 3 {
		do("10.1.1.1:80", "guess", "203.0.113.9, 10.2.2.2")
	}
	if w := do("10.3.3.3:80", "guess", "198.51.100.1", "203.0.113.9"); w.Code != 429 {
		t.Errorf("4th failure of a client behind trusted proxies = %d; want 429", w.Code)
	}
	if w := do("10.1.1.1:80", "guess", "203.0.113.10"); w.Code != 401 {
		t.Errorf("another client behind the proxy = %d; want 401", w.Code)
	}
	for range 4 { // an untrusted peer's X-Forwarded-For is ignored
		do("198.51.100.50:80", "guess", "203.0.113.77")
	}
	if w := do("10.1.1.1:80", "guess", "203.0.113.77"); w.Code != 401 {
		t.Errorf("a forged X-Forwarded-For counted for %s: %d", "203.0.113.77", w.Code)
	}
}

// TestAuthLimiterBounded checks that attacker-chosen addresses cannot grow the limiter
// past its bound.
func TestAuthLimiterBounded(t *testing.T) {
	l := newAuthLimiter(1, time.Hour, nil, slog.New(slog.DiscardHandler))
	l.limit = 100
	for i := range 1000 {
		l.failed(fmt.Sprintf("192.0.%d.%d", i/256, i%256))
	}
	if len(l.clients) != 100 || l.lru.Len() != 100 {
		t.Errorf("%d addresses kept (list %d); want 100", len(l.clients), l.lru.Len())
	}
	if _, ok := l.clients["192.0.3.231"]; !ok { // the last one stays
		t.Error("the most recent address was evicted")
	}
}

// TestAuthWriterPassesThrough checks that the limiter's ResponseWriter keeps what
// handlers rely on: hijacking (websockets) and flushing through http.ResponseController.
func TestAuthWriterPassesThrough(t *testing.T) {
	l := newAuthLimiter(1, time.Minute, nil, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path == "/flush" {
			io.WriteString(w, "a")
			if err := rc.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
			return
		}
		c, brw, err := rc.Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/flush")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/up", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "x")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("upgrade through the limiter = %d; want 101", resp.StatusCode)
	}
}

// pipeListener is a listener whose connections come from chosen addresses.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// dial hands the listener a connection from addr and returns the client's end.
func (l *pipeListener) dial(addr string) net.Conn {
	client, server := net.Pipe()
	l.conns <- addrConn{Conn: server, remote: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))}
	return client
}

func TestConnLimiter(t *testing.T) {
	pl := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ln := newConnLimiter(pl, 8, 2, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}, slog.New(slog.DiscardHandler))
	accepted := make(chan net.Conn, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(pl.done) // ends the Accept loop
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})

	// refused checks that a connection got a 503, then EOF.
	refused := func(addr string) {
		t.Helper()
		c := pl.dial(addr)
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("connection from %s: %v; want a 503", addr, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || !strings.Contains(string(b), "too many connections") {
			t.Errorf("connection from %s = %d %s; want 503 too many connections", addr, resp.StatusCode, b)
		}
	}
	take := func(addr string) net.Conn {
		t.Helper()
		c := pl.dial(addr)
		select {
		case s := <-accepted:
			t.Cleanup(func() { s.Close(); c.Close() })
			return s
		case <-time.After(5 * time.Second):
			t.Fatalf("connection from %s not accepted", addr)
			return nil
		}
	}
	a1 := take("192.0.2.1:1")
	take("192.0.2.1:2")
	refused("192.0.2.1:3") // per address
	take("[2001:db8::1]:1")
	take("[2001:db8::2]:1")
	refused("[2001:db8::3]:1") // an IPv6 /64 is one client
	a1.Close()                 // frees its slot, once however often it is closed
	a1.Close()
	take("192.0.2.1:4")
	// Loopback and trusted proxies carry many clients: only the total cap applies.
	take("127.0.0.1:1")
	take("127.0.0.1:2")
	take("127.0.0.1:3")
	take("10.0.0.1:1")
	refused("127.0.0.1:4") // the total cap
	l := ln.(*connLimiter)
	l.mu.Lock()
	defer l.mu.Unlock()
	if diff := cmp.Diff(l.byIP, map[string]int{"192.0.2.1": 2, "2001:db8::/64": 2}); l.total != 8 || diff != "" {
		t.Errorf("total %d; per address (-got +want):\n%s", l.total, diff)
	}
}

// limitedServer serves h with the limits l on a loopback port, as serve does.
func limitedServer(t *testing.T, h http.Handler, l LimitFlags) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln = limitServer(srv, ln, l, nil, slog.New(slog.NewTextHandler(t.Output(), nil)))
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }() // ends at Close below
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// closedWithin reads c until the server closes it and fails unless that happens within d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s (read %q)", d, b)
	}
	return string(b)
}

// TestBodyDeadline checks that a body has BodyTimeout to arrive (uploads UploadTimeout),
// that the deadline ends once the body is read, and that a websocket handshake with a
// body is refused.
func TestBodyDeadline(t *testing.T) {
	l := defaultLimitFlags()
	l.BodyTimeout, l.UploadTimeout = 300*time.Millisecond, 1500*time.Millisecond
	addr := limitedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(500 * time.Millisecond) // longer than BodyTimeout: the answer still comes
		fmt.Fprintf(w, "got %d", len(b))
	}), l)
	send := func(req string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		return c
	}
	start := time.Now()
	slow := send("POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\napiKey=")
	if got := closedWithin(t, slow, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Errorf("slow body answer %q; want a 400", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("slow body closed after %s", d)
	}
	// An upload gets UploadTimeout: still open after BodyTimeout, then closed.
	up := send("POST /v1/sessions/x/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
	_ = up.SetReadDeadline(time.Now().Add(800 * time.Millisecond))
	if n, err := up.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Errorf("upload cut off before UploadTimeout: %d, %v", n, err)
	}
	closedWithin(t, up, 5*time.Second)
	// A complete body: the handler takes longer than BodyTimeout and still answers.
	ok := send("POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	if got := closedWithin(t, ok, 5*time.Second); !strings.Contains(got, "200 OK") || !strings.HasSuffix(got, "got 2") {
		t.Errorf("complete body answer %q; want 200 got 2", got)
	}
	ws := send("GET /connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nhello")
	if got := closedWithin(t, ws, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 400") || !strings.Contains(got, "must not have a body") {
		t.Errorf("websocket handshake with a body = %q; want 400", got)
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// TestIdleTimeout checks that a keep-alive connection is closed after HTTPIdleTimeout.
func TestIdleTimeout(t *testing.T) {
	l := defaultLimitFlags()
	l.HTTPIdleTimeout = 300 * time.Millisecond
	addr := limitedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), l)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.Close {
		t.Fatalf("keep-alive request: %v, close %v", err, resp != nil && resp.Close)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v; want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %s", d)
	}
}

// FuzzAuthClientKey feeds the limiter's key function attacker-chosen RemoteAddr and
// X-Forwarded-For values: it never panics, and a client behind no trusted proxy always
// counts under its peer's address, whatever it forwards.
func FuzzAuthClientKey(f *testing.F) {
	f.Add("192.0.2.1:80", "203.0.113.9, 10.0.0.1")
	f.Add("[2001:db8::1]:443", "2001:db8:ffff::1")
	f.Add("[fe80::1%eth0]:1", "fe80::2%25x, , junk")
	f.Add("10.0.0.1:1", "::ffff:192.0.2.1,10.0.0.2")
	f.Add("nonsense", "")
	none := newAuthLimiter(1, time.Minute, nil, slog.New(slog.DiscardHandler))
	all, err := parseTrustedProxies("0.0.0.0/0, ::/0")
	if err != nil {
		f.Fatal(err)
	}
	every := newAuthLimiter(1, time.Minute, all, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		k := none.clientKey(r)
		if a, ok := addrOf(remote); ok && k != clientKey(a) {
			t.Errorf("untrusted peer %q with X-Forwarded-For %q counts as %q", remote, xff, k)
		}
		if k2 := every.clientKey(r); k2 == "" && remote != "" {
			t.Errorf("empty key for %q, %q", remote, xff)
		}
	})
}

// FuzzParseTrustedProxies checks that --trusted-proxies never panics and that what it
// accepts is a list of valid prefixes.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8, ::1", "::ffff:10.0.0.1", "fe80::1%eth0", "1.2.3.4/33", ",,", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseTrustedProxies(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() {
				t.Errorf("parseTrustedProxies(%q) gave invalid prefix %v", s, p)
			}
		}
	})
}
