package webdriver

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// TestQuickstart runs the Selenium quickstart flow against a real session, in both
// authentication styles: open a page, find an element, type, click, read the result,
// take a screenshot, quit → the session is COMPLETED and its chromedriver gone.
func TestQuickstart(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	page := testPage(t)
	for _, style := range []string{"signing key", "api key"} {
		t.Run(style, func(t *testing.T) {
			s := hs.create(t, bb.CreateSessionRequest{Settings: bb.BrowserSettings{Viewport: &bb.Viewport{Width: 1024, Height: 700}}})
			c := hs.signingKeyClient(s.ID)
			if style == "api key" {
				c = hs.apiKeyClient(s.ID)
			}
			start := time.Now()
			caps := c.newSession(t, map[string]any{"browserName": "chrome"})
			created := time.Since(start)
			var url string
			c.cmd(t, http.MethodGet, "/url", nil, &url)
			t.Logf("time to first WebDriver command (New Session incl. chromedriver start + GET /url): %v (New Session %v)",
				time.Since(start), created)
			if url != "about:blank" {
				t.Errorf("first page URL = %q; want the session's about:blank", url)
			}
			if caps["browserName"] != "chrome" {
				t.Errorf("capabilities.browserName = %v", caps["browserName"])
			}
			if o, ok := caps["goog:chromeOptions"]; ok {
				t.Errorf("capabilities reveal goog:chromeOptions %v", o)
			}
			if n := len(hs.drivers(t)); n != 1 {
				t.Errorf("%d chromedriver processes running; want 1", n)
			}

			c.cmd(t, http.MethodPost, "/url", map[string]string{"url": page}, nil)
			var title string
			c.cmd(t, http.MethodGet, "/title", nil, &title)
			if title != "webdriver test" {
				t.Errorf("title = %q", title)
			}
			q := c.element(t, "#q")
			c.cmd(t, http.MethodPost, "/element/"+q+"/value", map[string]string{"text": "world"}, nil)
			c.cmd(t, http.MethodPost, "/element/"+c.element(t, "#go")+"/click", map[string]any{}, nil)
			var out string
			c.cmd(t, http.MethodGet, "/element/"+c.element(t, "#out")+"/text", nil, &out)
			if out != "hello world" {
				t.Errorf("result text = %q; want %q", out, "hello world")
			}

			// The session keeps its settings: the viewport it was created with.
			var size []int
			c.script(t, "return [innerWidth, innerHeight]", &size)
			if len(size) != 2 || size[0] != 1024 || size[1] != 700 {
				t.Errorf("viewport = %v; want [1024 700]", size)
			}
			var shot string
			c.cmd(t, http.MethodGet, "/screenshot", nil, &shot)
			b, err := base64.StdEncoding.DecodeString(shot)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("screenshot is not a PNG: %v", err)
			}
			if got := img.Bounds().Size(); got.X != 1024 || got.Y != 700 {
				t.Errorf("screenshot %v; want 1024x700", got)
			}

			rep := c.do(t, http.MethodDelete, "/session/"+c.session, nil)
			if rep.status != http.StatusOK || rep.code != "" || string(rep.value) != "null" {
				t.Fatalf("quit: %d %s %s", rep.status, rep.code, rep.value)
			}
			if got := hs.status(t, s.ID); got != bb.StatusCompleted {
				t.Errorf("status after quit = %s; want COMPLETED", got)
			}
			if left := hs.drivers(t); len(left) > 0 {
				t.Errorf("chromedriver still running after quit: %v", left)
			}
			// The quit session answers with why it ended; quitting again succeeds.
			rep = c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
			if rep.status != http.StatusNotFound || rep.code != errInvalidSessionID {
				t.Errorf("command after quit: %d %s %s", rep.status, rep.code, rep.message)
			}
			if rep = c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
				t.Errorf("second quit: %d %s %s", rep.status, rep.code, rep.message)
			}
		})
	}
}

// TestAuth checks that requests without valid credentials of the right session are
// refused, and that a refused New Session has no effect on the session.
func TestAuth(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	a := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	other := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	owner := hs.signingKeyClient(a.ID)
	owner.newSession(t, nil)
	path := "/session/" + owner.session + "/url"

	hdr := func(kv ...string) *wdClient {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return &wdClient{base: hs.srv.URL + "/webdriver", header: h}
	}
	tests := []struct {
		name       string
		c          *wdClient
		method     string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"no credentials: new session", hdr(), "POST", "/session", 401, errSessionNotCreated},
		{"no credentials: command", hdr(), "GET", path, 401, errUnknownError},
		{"forged signing key: new session", hdr("x-bb-signing-key", a.ID+".forged"), "POST", "/session", 401, errSessionNotCreated},
		{"forged signing key: command", hdr("x-bb-signing-key", a.ID+".forged"), "GET", path, 404, errInvalidSessionID},
		{"wrong api key", hdr("x-bb-api-key", "bb_wrong", "session-id", a.ID), "GET", path, 401, errUnknownError},
		{"api key without session-id", hdr("x-bb-api-key", hs.apiKey), "GET", path, 400, errInvalidArgument},
		{"other session's signing key", hs.signingKeyClient(other.ID), "GET", path, 404, errInvalidSessionID},
		{"other session's id with api key", hs.apiKeyClient(other.ID), "GET", path, 404, errInvalidSessionID},
		{"other session's signing key: quit", hs.signingKeyClient(other.ID), "DELETE", "/session/" + owner.session, 404, errInvalidSessionID},
		{"unknown session id", hs.apiKeyClient(bb.NewID()), "POST", "/session", 404, errSessionNotCreated},
		{"unknown webdriver session", hs.signingKeyClient(a.ID), "GET", "/session/0123456789abcdef/url", 404, errInvalidSessionID},
		{"unknown command", hs.signingKeyClient(a.ID), "GET", "/status", 404, errUnknownCommand},
		{"firefox", hs.signingKeyClient(other.ID), "POST", "/session", 500, errSessionNotCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.method == "POST" {
				body = map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"browserName": "chrome"}}}
				if tt.name == "firefox" {
					body = map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"browserName": "firefox"}}}
				}
			}
			rep := tt.c.do(t, tt.method, tt.path, body)
			if rep.status != tt.wantStatus || rep.code != tt.wantCode {
				t.Errorf("%s %s = %d %q (%s); want %d %q", tt.method, tt.path, rep.status, rep.code, rep.message, tt.wantStatus, tt.wantCode)
			}
		})
	}
	// The refusals changed nothing: both sessions run, the owner's WebDriver session works.
	for _, id := range []string{a.ID, other.ID} {
		if got := hs.status(t, id); got != bb.StatusRunning {
			t.Errorf("session %s is %s; want RUNNING", id, got)
		}
	}
	var url string
	owner.cmd(t, http.MethodGet, "/url", nil, &url)
}

// TestConnected checks that a WebDriver session counts as a connected client: no
// connect-deadline end, and a CDP client leaving does not end the session.
func TestConnected(t *testing.T) {
	hs := newHarness(t, harnessConfig{connectTimeout: 300 * time.Millisecond, grace: 100 * time.Millisecond})
	s := hs.create(t, bb.CreateSessionRequest{})
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	att, err := hs.m.Attach(t.Context(), bb.ConnectCredentials{SigningKey: hs.m.SigningKey(s.ID)})
	if err != nil {
		t.Fatal(err)
	}
	att.Detach() // a CDP client came and went
	time.Sleep(time.Second)
	if got := hs.status(t, s.ID); got != bb.StatusRunning {
		t.Fatalf("status with a WebDriver session = %s; want RUNNING", got)
	}
	var url string
	c.cmd(t, http.MethodGet, "/url", nil, &url)
	if rep := c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
		t.Fatalf("quit: %d %s", rep.status, rep.message)
	}
	if got := hs.status(t, s.ID); got != bb.StatusCompleted {
		t.Errorf("status after quit = %s; want COMPLETED", got)
	}
}

// TestSessionEnd checks that a session ended elsewhere (REQUEST_RELEASE) stops its
// chromedriver and that later commands say why.
func TestSessionEnd(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	s := hs.create(t, bb.CreateSessionRequest{KeepAlive: true})
	c := hs.apiKeyClient(s.ID)
	c.newSession(t, nil)
	if _, err := hs.m.ReleaseSession(t.Context(), hs.projectID, s.ID); err != nil {
		t.Fatal(err)
	}
	waitNoDrivers(t, hs)
	rep := c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
	if rep.status != http.StatusNotFound || rep.code != errInvalidSessionID || !strings.Contains(rep.message, "COMPLETED") {
		t.Errorf("command after release: %d %s %q", rep.status, rep.code, rep.message)
	}
	rep = c.do(t, http.MethodPost, "/session", map[string]any{})
	if rep.status != http.StatusGone || rep.code != errSessionNotCreated {
		t.Errorf("New Session on an ended session: %d %s %q; want 410", rep.status, rep.code, rep.message)
	}
	if rep = c.do(t, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
		t.Errorf("quit after release: %d %s %s", rep.status, rep.code, rep.message)
	}
}

// TestTimeout checks that a session's timeout ends it with a WebDriver session attached,
// as with a CDP client: TIMED_OUT, chromedriver gone, commands say why.
func TestTimeout(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	s := hs.create(t, bb.CreateSessionRequest{Timeout: 15}) // below the API's minimum: the Manager allows it
	c := hs.signingKeyClient(s.ID)
	c.newSession(t, nil)
	hs.waitStatus(t, s.ID, bb.StatusTimedOut, 40*time.Second)
	waitNoDrivers(t, hs)
	rep := c.do(t, http.MethodGet, "/session/"+c.session+"/url", nil)
	if rep.status != http.StatusNotFound || rep.code != errInvalidSessionID || !strings.Contains(rep.message, "TIMED_OUT") {
		t.Errorf("command after timeout: %d %s %q", rep.status, rep.code, rep.message)
	}
}

// waitNoDrivers waits until no chromedriver of the harness runs.
func waitNoDrivers(t testing.TB, hs *harness) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(hs.drivers(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver still running: %v", hs.drivers(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
