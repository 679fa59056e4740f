package webdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// harness is a Handler in front of a real bb.Manager with real Chromium, SQLite and
// chromedriver. chromedriver runs through a symlink in a temp dir, so that the processes
// of this test are found by their command line.
type harness struct {
	m         *bb.Manager
	h         *Handler
	srv       *httptest.Server
	projectID string
	apiKey    string
	driverDir string
}

type harnessConfig struct {
	connectTimeout, grace, idle time.Duration
}

// chromedriverPath returns a real chromedriver, skipping the test when there is none
// (failing it when BROWSERD_REQUIRE_CHROME=1).
func chromedriverPath(t testing.TB) string {
	t.Helper()
	p, err := FindChromedriver("")
	if err != nil {
		if os.Getenv(chrometest.RequireEnv) == "1" {
			t.Fatalf("%s=1 but: %v", chrometest.RequireEnv, err)
		}
		t.Skipf("no chromedriver: %v", err)
	}
	return p
}

func newHarness(t testing.TB, hc harnessConfig) *harness {
	t.Helper()
	bin := chromedriverPath(t)
	l := chrometest.RealLauncher(t)
	driverDir := t.TempDir()
	link := filepath.Join(driverDir, "chromedriver")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs last: after the Handler and Manager are closed
		chrometest.AssertNoLeaks(t, l.RunDir())
		for _, p := range chrometest.Processes(t, driverDir) {
			t.Errorf("chromedriver left behind: %s", p)
		}
	})
	db := sqlitetest.Open(t)
	p, key := sqlitetest.Project(t, db, 10)
	signer, err := bb.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if hc.grace == 0 {
		hc.grace = 100 * time.Millisecond
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	m, err := bb.NewManager(bb.ManagerConfig{
		Store: db, Launcher: l, Signer: signer, Logger: log,
		Setup:          bb.SetupConfig{Proxies: chrometest.Proxies()},
		ConnectTimeout: hc.connectTimeout, DisconnectGrace: hc.grace,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Sessions: m, Chromedriver: link, Logger: log, IdleTimeout: hc.idle})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webdriver/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Handler.Shutdown: %v", err)
		}
		srv.Close()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
	})
	return &harness{m: m, h: h, srv: srv, projectID: p.ID, apiKey: key, driverDir: driverDir}
}

func (hs *harness) create(t testing.TB, req bb.CreateSessionRequest) *bb.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := hs.m.CreateSession(ctx, hs.projectID, req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

func (hs *harness) status(t testing.TB, id string) bb.SessionStatus {
	t.Helper()
	s, err := hs.m.Session(context.Background(), hs.projectID, id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Status
}

// waitStatus polls until the session has status want.
func (hs *harness) waitStatus(t testing.TB, id string, want bb.SessionStatus, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := hs.status(t, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s is %s after %s; want %s", id, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drivers returns the chromedriver processes of this harness.
func (hs *harness) drivers(t testing.TB) []string { return chrometest.Processes(t, hs.driverDir) }

// signingKeyClient returns a client authenticated the Node quickstart's way.
func (hs *harness) signingKeyClient(sessionID string) *wdClient {
	h := http.Header{}
	h.Set("x-bb-signing-key", hs.m.SigningKey(sessionID))
	return &wdClient{base: hs.srv.URL + "/webdriver", header: h}
}

// apiKeyClient returns a client authenticated the Python quickstart's way.
func (hs *harness) apiKeyClient(sessionID string) *wdClient {
	h := http.Header{}
	h.Set("x-bb-api-key", hs.apiKey)
	h.Set("session-id", sessionID)
	return &wdClient{base: hs.srv.URL + "/webdriver", header: h}
}

// wdClient is a minimal W3C WebDriver client.
type wdClient struct {
	base    string
	header  http.Header
	session string // WebDriver session id
}

// reply is a decoded WebDriver response.
type reply struct {
	status  int
	value   json.RawMessage
	code    string // W3C error code, "" on success
	message string
}

func (c *wdClient) do(t testing.TB, method, path string, body any) reply {
	t.Helper()
	rep, err := c.try(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// try sends one request and decodes the WebDriver answer; safe in any goroutine.
func (c *wdClient) try(method, path string, body any) (reply, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return reply{}, err
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	var v struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return reply{}, fmt.Errorf("%s %s: %d, not WebDriver JSON: %.300s", method, path, resp.StatusCode, data)
	}
	rep := reply{status: resp.StatusCode, value: v.Value}
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(v.Value, &e) == nil && e.Error != "" {
		rep.code, rep.message = e.Error, e.Message
	}
	return rep, nil
}

// cmd runs a command of the client's WebDriver session and fails the test on an error.
func (c *wdClient) cmd(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	rep := c.do(t, method, "/session/"+c.session+path, body)
	if rep.code != "" || rep.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s: %s", method, path, rep.status, rep.code, rep.message)
	}
	if out != nil {
		if err := json.Unmarshal(rep.value, out); err != nil {
			t.Fatalf("%s %s: decode %.200s: %v", method, path, rep.value, err)
		}
	}
}

// newSession creates a WebDriver session with caps as alwaysMatch; it returns the
// capabilities.
func (c *wdClient) newSession(t testing.TB, caps map[string]any) map[string]any {
	t.Helper()
	rep := c.do(t, http.MethodPost, "/session", map[string]any{
		"capabilities": map[string]any{"alwaysMatch": caps, "firstMatch": []any{map[string]any{}}},
	})
	if rep.code != "" || rep.status != http.StatusOK {
		t.Fatalf("New Session: %d %s: %s", rep.status, rep.code, rep.message)
	}
	var v struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	if err := json.Unmarshal(rep.value, &v); err != nil || v.SessionID == "" {
		t.Fatalf("New Session answer %.300s: %v", rep.value, err)
	}
	c.session = v.SessionID
	return v.Capabilities
}

// element finds one element by CSS selector and returns its reference.
func (c *wdClient) element(t testing.TB, css string) string {
	t.Helper()
	var v map[string]string
	c.cmd(t, http.MethodPost, "/element", map[string]any{"using": "css selector", "value": css}, &v)
	ref := v["element-6066-11e4-a52e-4f735466cecf"]
	if ref == "" {
		t.Fatalf("element %s: no reference in %v", css, v)
	}
	return ref
}

// script runs a synchronous script and decodes its result into out.
func (c *wdClient) script(t testing.TB, js string, out any) {
	t.Helper()
	c.cmd(t, http.MethodPost, "/execute/sync", map[string]any{"script": js, "args": []any{}}, out)
}

// testPage serves a form: typing into #q and clicking #go writes "hello <q>" to #out.
func testPage(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>webdriver test</title></head><body>
<input id="q"><button id="go" onclick="document.getElementById('out').textContent='hello '+document.getElementById('q').value">go</button>
<p id="out"></p></body></html>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/form"
}
