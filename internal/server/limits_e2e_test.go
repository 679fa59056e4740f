package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawConn dials a test server's address and sends req (if any) as it is.
func rawConn(t *testing.T, base, req string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if req != "" {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestUnauthenticatedConnections is the reproduction of security review F4.2 on a real
// server: idle keep-alive connections and unfinished bodies, authenticated or not, are
// closed after their timeouts instead of being held forever.
func TestUnauthenticatedConnections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv(), "--http-idle-timeout", "1s", "--body-timeout", "1s")

	var conns []net.Conn
	for range 20 {
		c := rawConn(t, srv.URL, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("keep-alive GET /healthz: %v", err)
		}
		conns = append(conns, c)
	}
	slow := []net.Conn{
		rawConn(t, srv.URL, "POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\napiKey="),
		rawConn(t, srv.URL, "POST /webdriver/session HTTP/1.1\r\nHost: x\r\nX-Bb-Signing-Key: bogus\r\nContent-Length: 1000\r\n\r\n{\"capab"),
		rawConn(t, srv.URL, "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nX-Bb-Api-Key: "+testAPIKey+"\r\nContent-Length: 1000\r\n\r\n{\"keepAl"),
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range append(conns, slow...) {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Errorf("connection %d still open after 10s: %v", i, err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("connections closed after %s; want about 1s", d)
	}
}

// TestConnectionCap checks --max-conns on a real server: a connection beyond it gets a
// 503 and is closed; a closed one frees its slot.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv(), "--max-conns", "4")
	var held []net.Conn
	for range 4 {
		c := rawConn(t, srv.URL, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection within the cap: %v", err)
		}
		held = append(held, c)
	}
	over := rawConn(t, srv.URL, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = over.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection beyond the cap: %v, %+v; want 503", err, resp)
	}
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := rawConn(t, srv.URL, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot 10s after a connection closed: %v %+v", err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuthFailureLimit checks on a real server that failed authentications on every
// route that checks a credential count together per client address, that beyond
// --auth-failures they get 429 with Retry-After in the API's error shape, and that good
// credentials from the same address still work.
func TestAuthFailureLimit(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv(), "--auth-failures", "6", "--metrics-token", testMetricsToken)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, h map[string]string, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-Websocket-Version": "13",
		"Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	bad := []struct {
		name, method, path string
		h                  map[string]string
		body               string
	}{
		{"REST API key", "GET", "/v1/sessions", map[string]string{"X-BB-API-Key": "bb_wrong_key_0123456789"}, ""},
		{"gateway signing key", "GET", "/connect?signingKey=forged", upgrade, ""},
		{"WebDriver signing key", "POST", "/webdriver/session", map[string]string{"X-Bb-Signing-Key": "bogus"}, `{"capabilities":{}}`},
		{"dashboard sign-in", "POST", "/ui/login", form, "apiKey=bb_wrong_key_0123456789"},
		{"live view token", "GET", "/debug/lv1.forged/status", nil, ""},
		{"metrics token", "GET", "/metrics", map[string]string{"Authorization": "Bearer wrong"}, ""},
	}
	for _, b := range bad {
		if resp, body := send(b.method, b.path, b.h, b.body); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s, within the limit = %d %s; want 401", b.name, resp.StatusCode, body)
		}
	}
	for _, b := range bad {
		resp, body := send(b.method, b.path, b.h, b.body)
		var e struct {
			StatusCode int    `json:"statusCode"`
			Message    string `json:"message"`
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			json.Unmarshal([]byte(body), &e) != nil || e.StatusCode != 429 || !strings.Contains(e.Message, "too many failed authentications") {
			t.Errorf("%s, beyond the limit = %d, Retry-After %q, %s; want 429 in the error shape", b.name, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	// Good credentials from the same address are served as always.
	if resp, body := send("GET", "/v1/sessions", map[string]string{"X-BB-API-Key": testAPIKey}, ""); resp.StatusCode != 200 {
		t.Errorf("a valid key after the limit = %d %s; want 200", resp.StatusCode, body)
	}
	if resp, _ := send("GET", "/metrics", map[string]string{"Authorization": "Bearer " + testMetricsToken}, ""); resp.StatusCode != 200 {
		t.Errorf("the metrics token after the limit = %d; want 200", resp.StatusCode)
	}
	if resp, body := send("POST", "/ui/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": srv.URL},
		"apiKey="+testAPIKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("dashboard sign-in with the key after the limit = %d %s; want 303", resp.StatusCode, body)
	}
}
