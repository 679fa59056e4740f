package webdriver

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// driverPID returns the pid of the chromedriver of a browserd session.
func (hs *harness) driverPID(t testing.TB, sessionID string) int {
	t.Helper()
	hs.h.mu.Lock()
	defer hs.h.mu.Unlock()
	d := hs.h.drivers[sessionID]
	if d == nil || d.proc == nil {
		t.Fatalf("no chromedriver for session %s", sessionID)
	}
	return d.proc.pid
}

// TestChromedriverCrash kills chromedriver under a running command: the command and
// the ones after it get a WebDriver error (not a hang), the session ends like a
// disconnected client's, and quit still succeeds.
func TestChromedriverCrash(t *testing.T) {
	hs := newHarness(t, harnessConfig{grace: 200 * time.Millisecond})
	s := hs.create(t, bb.CreateSessionRequest{})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, map[string]any{"timeouts": map[string]int{"script": 120_000}})
	pid := hs.driverPID(t, s.ID)

	var rep reply
	var repErr error
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() { // a script that never finishes
		rep, repErr = c.try(http.MethodPost, "/session/"+c.session+"/execute/async", map[string]any{"script": "", "args": []any{}})
	})
	time.Sleep(500 * time.Millisecond) // let it reach chromedriver
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if repErr != nil {
		t.Fatal(repErr)
	}
	t.Logf("in-flight command answered %v after the start, %d %s: %s", time.Since(start), rep.status, rep.code, rep.message)
	if rep.status != http.StatusInternalServerError || rep.code != errUnknownError || !strings.Contains(rep.message, "chromedriver exited") {
		t.Errorf("in-flight command: %d %q %q; want 500 unknown error about chromedriver", rep.status, rep.code, rep.message)
	}
	rep = c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
	if rep.status != http.StatusInternalServerError || rep.code != errUnknownError || !strings.Contains(rep.message, "chromedriver exited") {
		t.Errorf("command after the crash: %d %q %q", rep.status, rep.code, rep.message)
	}
	// Without keepAlive, losing the only client ends the session (spec §5.3).
	hs.waitStatus(t, s.ID, bb.StatusCompleted, 5*time.Second)
	if rep = c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
		t.Errorf("quit after the crash: %d %s %s", rep.status, rep.code, rep.message)
	}
	waitNoDrivers(t, hs)
}

// TestIdle checks that a WebDriver session without commands for IdleTimeout is closed
// like an idle CDP connection, ending a session without keepAlive.
func TestIdle(t *testing.T) {
	hs := newHarness(t, harnessConfig{idle: 500 * time.Millisecond})
	s := hs.create(t, bb.CreateSessionRequest{})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	// Commands keep it open, a long one included.
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		c.script(t, "return 1", nil)
	}
	c.cmd(t, http.MethodPost, "/execute/async", map[string]any{
		"script": "setTimeout(arguments[0], 900)", "args": []any{}}, nil)
	if got := hs.status(t, s.ID); got != bb.StatusRunning {
		t.Fatalf("status while commands arrive = %s; want RUNNING", got)
	}
	hs.waitStatus(t, s.ID, bb.StatusCompleted, 5*time.Second)
	rep := c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
	if rep.status != http.StatusNotFound || rep.code != errInvalidSessionID || !strings.Contains(rep.message, "without a command") {
		t.Errorf("command after idle: %d %q %q", rep.status, rep.code, rep.message)
	}
	waitNoDrivers(t, hs)
}

// TestMixedCDP drives one session with WebDriver and CDP at once: both see the same page.
func TestMixedCDP(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	page := testPage(t)
	s := hs.create(t, bb.CreateSessionRequest{})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	c.cmd(t, http.MethodPost, "/url", map[string]string{"url": page}, nil)

	att, err := hs.m.Attach(t.Context(), bb.ConnectCredentials{SigningKey: hs.m.SigningKey(s.ID)})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Detach()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cdp := &cdpConn{chrometest.Dial(t, att.BrowserURL)}
	var targets struct {
		TargetInfos []struct{ TargetID, Type, URL string } `json:"targetInfos"`
	}
	cdp.call(ctx, t, "", "Target.getTargets", nil, &targets)
	var pageTarget string
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			if pageTarget != "" {
				t.Fatalf("more than one page: %+v", targets.TargetInfos)
			}
			pageTarget = ti.TargetID
			if ti.URL != page {
				t.Errorf("CDP sees page %q; WebDriver opened %q", ti.URL, page)
			}
		}
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	cdp.call(ctx, t, "", "Target.attachToTarget", map[string]any{"targetId": pageTarget, "flatten": true}, &attached)
	cdp.call(ctx, t, attached.SessionID, "Runtime.evaluate", map[string]any{
		"expression": "document.getElementById('q').value = 'from cdp'"}, nil)
	c.cmd(t, http.MethodPost, "/element/"+c.element(t, "#go")+"/click", map[string]any{}, nil)
	var out string
	c.cmd(t, http.MethodGet, "/element/"+c.element(t, "#out")+"/text", nil, &out)
	if out != "hello from cdp" {
		t.Errorf("WebDriver reads %q after CDP typed; want %q", out, "hello from cdp")
	}
	if rep := c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
		t.Fatalf("quit: %d %s", rep.status, rep.message)
	}
}

// TestLargeResponse relays a 4 MiB script result (Chromium itself makes big results
// slowly: research/chromium-limits.md §3d).
func TestLargeResponse(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	s := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	var big string
	start := time.Now()
	c.script(t, "return 'x'.repeat(4 << 20)", &big)
	t.Logf("4 MiB script result relayed in %v", time.Since(start))
	if len(big) != 4<<20 || strings.Trim(big, "x") != "" {
		t.Errorf("result of %d bytes; want %d x", len(big), 4<<20)
	}
}

// TestSharedDriver runs two WebDriver sessions on one browserd session: they share one
// chromedriver, and quitting one ends the browserd session and both.
func TestSharedDriver(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	s := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	c1, c2 := hs.signingKeyClient(s.ID), hs.apiKeyClient(s.ID)
	c1.newSession(t, nil)
	c2.newSession(t, nil)
	if n := len(hs.drivers(t)); n != 1 {
		t.Errorf("%d chromedrivers for one session; want 1", n)
	}
	// An escaped "/" in a parameter reaches chromedriver escaped.
	c1.cmd(t, http.MethodPost, "/url", map[string]string{"url": testPage(t)}, nil)
	c1.cmd(t, http.MethodPost, "/cookie", map[string]any{"cookie": map[string]string{"name": "a/b", "value": "slash"}}, nil)
	var cookie struct{ Name, Value string }
	c2.cmd(t, http.MethodGet, "/cookie/a%2Fb", nil, &cookie)
	if cookie.Name != "a/b" || cookie.Value != "slash" {
		t.Errorf("cookie a/b = %+v", cookie)
	}
	c1.script(t, "window.shared = 42", nil)
	var v int
	c2.script(t, "return window.shared", &v)
	if v != 42 {
		t.Errorf("second WebDriver session sees %d; want 42", v)
	}
	if rep := c2.do(t, http.MethodDelete, "/session/"+c2.session, nil); rep.status != http.StatusOK {
		t.Fatalf("quit: %d %s", rep.status, rep.message)
	}
	if got := hs.status(t, s.ID); got != bb.StatusCompleted {
		t.Errorf("status after quit = %s; want COMPLETED", got)
	}
	if rep := c1.do(t, http.MethodGet, "/session/"+c1.session+"/url", nil); rep.code != errInvalidSessionID {
		t.Errorf("other WebDriver session after quit: %d %s %s", rep.status, rep.code, rep.message)
	}
}

// TestShutdown stops every chromedriver; their sessions answer that the server is
// shutting down.
func TestShutdown(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	s := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := hs.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if left := hs.drivers(t); len(left) > 0 {
		t.Errorf("chromedriver running after Shutdown: %v", left)
	}
	rep := c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
	if rep.status != http.StatusServiceUnavailable {
		t.Errorf("command after Shutdown: %d %s %s", rep.status, rep.code, rep.message)
	}
}

// cdpConn is the test's CDP client; a failed call fails the test.
type cdpConn struct{ *cdp.Conn }

func (c *cdpConn) call(ctx context.Context, t testing.TB, sessionID, method string, params, out any) {
	t.Helper()
	if err := c.Call(ctx, sessionID, method, params, out); err != nil {
		t.Fatal(err)
	}
}

// TestChromedriverPortTaken checks that a chromedriver that lost its port to another
// process before binding it (as chromedriver --port=0 can, on a busy machine) is started
// again: the client's New Session succeeds.
func TestChromedriverPortTaken(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	real := chromedriverPath(t)
	link := filepath.Join(hs.driverDir, "chromedriver")
	marker := filepath.Join(t.TempDir(), "failed-once")
	script := "#!/bin/sh\nif [ ! -e " + marker + " ]; then\n  touch " + marker + "\n" +
		"  echo '[1796466153.236][SEVERE]: bind() failed: Address already in use (98)'\n" +
		"  echo 'IPv4 port not available. Exiting...'\n  exit 1\nfi\nexec " + real + " \"$@\"\n"
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := hs.create(t, bb.CreateSessionRequest{})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the first chromedriver did not run: %v", err)
	}
	if rep := c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
		t.Errorf("quit: %d %s %s", rep.status, rep.code, rep.message)
	}
	waitNoDrivers(t, hs)
}
