package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pageServer serves an HTML page with title.
func pageServer(t *testing.T, title string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body>hello</body></html>", title)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// TestLifecycle drives sessions end to end on the real server with its default warm
// pool: create with the API key, connect through the gateway, navigate to a page served
// by the test, read its title, release; and measures that round trip (twice: right after
// start, and with the pool refilled).
func TestLifecycle(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv(), "--pool-size", "2")
	page := pageServer(t, "browserd e2e")
	for round := 1; round <= 2; round++ {
		lifecycleRound(t, srv, page.URL, round)
	}
	srv.stop(t)
}

func lifecycleRound(t *testing.T, srv *testServer, pageURL string, round int) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	sess := srv.create(t, testAPIKey, nil)
	created := time.Now()
	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connected := time.Now()
	title, err := cdp.gotoAndTitle(ctx, sid, pageURL)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Now()
	if title != "browserd e2e" {
		t.Errorf("document.title = %q; want %q", title, "browserd e2e")
	}
	rel := srv.release(t, testAPIKey, sess.ID)
	released := time.Now()
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("round %d: create→connect→goto→release %v (create %v, connect+attach %v, goto %v, release %v)",
		round, ms(released.Sub(start)), ms(created.Sub(start)), ms(connected.Sub(created)),
		ms(loaded.Sub(connected)), ms(released.Sub(loaded)))

	if rel.Status != "COMPLETED" || rel.EndedAt == "" {
		t.Errorf("released session: status %s, endedAt %q; want COMPLETED with endedAt", rel.Status, rel.EndedAt)
	}
	if _, err := time.Parse(time.RFC3339, rel.EndedAt); err != nil {
		t.Errorf("endedAt %q: %v", rel.EndedAt, err)
	}
	if got := srv.session(t, testAPIKey, sess.ID); got.Status != "COMPLETED" || got.EndedAt != rel.EndedAt {
		t.Errorf("GET after release: status %s, endedAt %q; want COMPLETED, %q", got.Status, got.EndedAt, rel.EndedAt)
	}
	// The client's connection ends with the session, with a close code.
	if err := waitClosed(ctx, cdp); websocket.CloseStatus(err) == -1 {
		t.Errorf("read after release: %v; want a close frame", err)
	}
	// Release is idempotent.
	if again := srv.release(t, testAPIKey, sess.ID); again.Status != "COMPLETED" || again.EndedAt != rel.EndedAt {
		t.Errorf("second release: %+v; want the same ended session", again)
	}
}

// TestDisconnect checks what a client leaving does: a keepAlive session lives on and
// takes a reconnect; a session without keepAlive ends (COMPLETED) after the grace.
func TestDisconnect(t *testing.T) {
	t.Parallel()
	const grace = 500 * time.Millisecond
	srv := startServer(t, t.TempDir(), defaultEnv(), "--disconnect-grace", grace.String())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	kept := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	plain := srv.create(t, testAPIKey, nil)
	for _, s := range []apiSession{kept, plain} {
		cdp := mustDial(t, ctx, s.ConnectURL)
		if _, err := cdp.version(ctx); err != nil {
			t.Fatal(err)
		}
		cdp.c.Close(websocket.StatusNormalClosure, "")
	}

	ended := srv.waitStatus(t, testAPIKey, plain.ID, "COMPLETED", grace+10*time.Second)
	if ended.EndedAt == "" {
		t.Errorf("session without keepAlive ended without endedAt: %+v", ended)
	}
	// By now the grace has passed for the keepAlive session too.
	time.Sleep(grace)
	if got := srv.session(t, testAPIKey, kept.ID); got.Status != "RUNNING" || got.EndedAt != "" {
		t.Fatalf("keepAlive session after its client left: %s, endedAt %q; want RUNNING", got.Status, got.EndedAt)
	}
	cdp := mustDial(t, ctx, kept.ConnectURL)
	if _, err := cdp.version(ctx); err != nil {
		t.Fatalf("keepAlive session after a reconnect: %v", err)
	}
	if _, err := cdp.attachPage(ctx); err != nil {
		t.Fatalf("keepAlive session after a reconnect: %v", err)
	}
	cdp.c.Close(websocket.StatusNormalClosure, "")
	time.Sleep(2 * grace)
	if got := srv.session(t, testAPIKey, kept.ID); got.Status != "RUNNING" {
		t.Fatalf("keepAlive session after a second disconnect: %s; want RUNNING", got.Status)
	}
	srv.release(t, testAPIKey, kept.ID)
	srv.stop(t)
}

// TestConnectDeadline checks that a session nobody connects to ends TIMED_OUT after the
// connect deadline, while one with a client stays.
func TestConnectDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 3 * time.Second // the test's connect must come before it
	srv := startServer(t, t.TempDir(), defaultEnv(), "--connect-timeout", deadline.String())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	idle := srv.create(t, testAPIKey, nil)
	used := srv.create(t, testAPIKey, nil)
	usedDeadline := time.Now().Add(deadline) // its timer started before create returned
	cdp := mustDial(t, ctx, used.ConnectURL)
	if _, err := cdp.version(ctx); err != nil {
		t.Fatal(err)
	}
	got := srv.waitStatus(t, testAPIKey, idle.ID, "TIMED_OUT", deadline+10*time.Second)
	if got.EndedAt == "" {
		t.Errorf("timed out session has no endedAt: %+v", got)
	}
	time.Sleep(time.Until(usedDeadline.Add(2 * time.Second))) // room for a late timer on a loaded machine
	if got := srv.session(t, testAPIKey, used.ID); got.Status != "RUNNING" {
		t.Errorf("connected session after the connect deadline: %s; want RUNNING", got.Status)
	}
	// The timed-out session's browser is gone and its connectUrl is refused.
	if c, resp, err := dialCDP(ctx, idle.ConnectURL); err == nil {
		c.c.CloseNow()
		t.Errorf("connect to a timed-out session succeeded")
	} else if resp == nil || resp.StatusCode < 400 {
		t.Errorf("connect to a timed-out session: %s; want an HTTP error", redactErr(err))
	}
	srv.stop(t)
}

// TestCrash kills a session's Chromium with SIGKILL: the session becomes ERROR, its
// client is disconnected, and nothing of the browser is left.
func TestCrash(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	cdp := mustDial(t, ctx, sess.ConnectURL)
	if _, err := cdp.version(ctx); err != nil {
		t.Fatal(err)
	}
	pids := browserPIDs(t, srv.DataDir+"/run") // the only browser: no warm pool
	if len(pids) != 1 {
		t.Fatalf("found %d browser processes for the session: %v; want 1", len(pids), pids)
	}
	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := srv.waitStatus(t, testAPIKey, sess.ID, "ERROR", 5*time.Second)
	t.Logf("kill -9 → ERROR seen after %v", time.Since(killed).Round(time.Millisecond))
	if got.EndedAt == "" {
		t.Errorf("crashed session has no endedAt: %+v", got)
	}
	if err := waitClosed(ctx, cdp); ctx.Err() != nil {
		t.Errorf("client connection still open after the crash: %v", err)
	}
	srv.stop(t)
}

// TestAuthRefusals checks that the REST API and the CDP gateway refuse missing and
// wrong credentials, and that the legacy apiKey&sessionId connect form works.
func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	for _, tt := range []struct{ name, method, path, key string }{
		{"create without key", "POST", "/v1/sessions", ""},
		{"create with wrong key", "POST", "/v1/sessions", "bb_wrong"},
		{"list without key", "GET", "/v1/sessions", ""},
		{"list with wrong key", "GET", "/v1/sessions", testAPIKey + "x"},
		{"projects with wrong key", "GET", "/v1/projects", "bb_wrong"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv.URL, tt.method, tt.path, tt.key, map[string]any{})
			var e struct {
				StatusCode int    `json:"statusCode"`
				Message    string `json:"message"`
			}
			if code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.StatusCode != 401 {
				t.Errorf("%s %s = %d %s; want 401 in the error shape", tt.method, tt.path, code, body)
			}
			if strings.Contains(string(body), testAPIKey) {
				t.Errorf("error body shows the key: %s", body)
			}
		})
	}

	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	other := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	cu, err := url.Parse(sess.ConnectURL)
	if err != nil {
		t.Fatal(err)
	}
	withQuery := func(path string, q url.Values) string {
		u := *cu
		u.Path, u.RawQuery = path, q.Encode()
		return u.String()
	}
	tampered := []byte(sess.SigningKey)
	tampered[len(tampered)/2] ^= 1
	for _, tt := range []struct {
		name string
		url  string
		want int
	}{
		{"no credentials", withQuery("/connect", nil), 401},
		{"wrong signingKey", withQuery("/connect", url.Values{"signingKey": {"not-a-key"}}), 401},
		{"tampered signingKey", withQuery("/connect", url.Values{"signingKey": {string(tampered)}}), 401},
		{"wrong signingKey at /", withQuery("/", url.Values{"signingKey": {"not-a-key"}}), 401},
		{"legacy wrong apiKey", withQuery("/", url.Values{"apiKey": {"bb_wrong"}, "sessionId": {sess.ID}}), 401},
		{"legacy apiKey without sessionId", withQuery("/", url.Values{"apiKey": {testAPIKey}}), 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dialCDP(ctx, tt.url)
			if err == nil {
				c.c.CloseNow()
				t.Fatalf("upgrade accepted; want HTTP %d", tt.want)
			}
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("upgrade refused with %s; want HTTP %d", redactErr(err), tt.want)
			}
			if resp.Header.Get("Upgrade") != "" {
				t.Errorf("refusal carries Upgrade: %q", resp.Header.Get("Upgrade"))
			}
		})
	}

	for _, tt := range []struct{ name, path string }{{"legacy form at /", "/"}, {"legacy form at /connect", "/connect"}} {
		t.Run(tt.name, func(t *testing.T) {
			cdp := mustDial(t, ctx, withQuery(tt.path, url.Values{"apiKey": {testAPIKey}, "sessionId": {sess.ID}}))
			if _, err := cdp.version(ctx); err != nil {
				t.Fatal(err)
			}
			cdp.c.Close(websocket.StatusNormalClosure, "")
		})
	}
	// A signing key opens its own session only: each connection sees its own browser.
	c1 := mustDial(t, ctx, sess.ConnectURL)
	c2 := mustDial(t, ctx, other.ConnectURL)
	if err := c1.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, nil); err != nil {
		t.Fatal(err)
	}
	s1, err1 := c1.attachPage(ctx)
	_, err2 := c2.attachPage(ctx)
	if err1 == nil || err2 != nil || s1 != "" {
		t.Errorf("after a second page in session 1: attach errors %v, %v; want session 1 to have 2 pages and session 2 one", err1, err2)
	}
	srv.release(t, testAPIKey, sess.ID)
	srv.release(t, testAPIKey, other.ID)
	srv.stop(t)
}
