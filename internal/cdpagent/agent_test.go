package cdpagent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/google/go-cmp/cmp"
)

// headers records the request headers a test server saw, by path.
type headers struct {
	mu sync.Mutex
	m  map[string]http.Header
}

func (h *headers) get(path string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[path]
}

// pageServer serves a small page at every path and an iframe page at /frame.
func pageServer(t *testing.T) (*httptest.Server, *headers) {
	t.Helper()
	h := &headers{m: map[string]http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.m[r.URL.Path] = r.Header.Clone()
		h.mu.Unlock()
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		if src := r.URL.Query().Get("frame"); src != "" {
			fmt.Fprintf(w, `<title>outer</title><iframe id=f src=%q></iframe>`, src)
			return
		}
		fmt.Fprintf(w, `<meta name=viewport content="width=device-width"><title>page %s</title>`, r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv, h
}

// client is a second CDP connection, as Playwright or Puppeteer would open.
type client struct{ c *cdp.Conn }

func newClient(t *testing.T, b bb.Browser) *client {
	t.Helper()
	c, err := cdp.Dial(t.Context(), b.DevToolsURL(), cdp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &client{c: c}
}

// newPage creates a tab and returns its flat session id.
func (cl *client) newPage(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var tgt struct {
		TargetID string `json:"targetId"`
	}
	if err := cl.c.Call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &tgt); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := cl.c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	return att.SessionID
}

// existingPage attaches to the browser's first tab, open before the agent started.
func (cl *client) existingPage(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var ts struct {
		TargetInfos []struct {
			TargetID, Type string
		} `json:"targetInfos"`
	}
	if err := cl.c.Call(ctx, "", "Target.getTargets", nil, &ts); err != nil {
		t.Fatal(err)
	}
	for _, ti := range ts.TargetInfos {
		if ti.Type == "page" {
			var att struct {
				SessionID string `json:"sessionId"`
			}
			if err := cl.c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &att); err != nil {
				t.Fatal(err)
			}
			return att.SessionID
		}
	}
	t.Fatal("no page")
	return ""
}

// navigate loads url in the page and returns the navigation's errorText ("" on success).
func (cl *client) navigate(t *testing.T, sid, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := cl.c.Call(ctx, sid, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		return nav.ErrorText
	}
	for {
		var done bool
		cl.eval(t, sid, `document.readyState === "complete" && location.href !== "about:blank"`, &done)
		if done {
			return ""
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not finish loading", url)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// eval evaluates expr in the page (awaiting promises) into out.
func (cl *client) eval(t *testing.T, sid, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := cl.c.Call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate %s: %s", expr, r.ExceptionDetails.Text)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("evaluate %s = %s: %v", expr, r.Result.Value, err)
	}
}

// startBrowser launches Chromium with e's flags and an agent for e.
func startBrowser(t *testing.T, e bb.Emulation, viewport bb.Viewport, args ...string) bb.Browser {
	t.Helper()
	const version = "156.0.0.0" // the flag's user agent; the agent uses the real version
	b := chrometest.Start(t, bb.LaunchOptions{Viewport: viewport, Args: append(e.LaunchArgs(version), args...)})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a, err := Start(ctx, b.DevToolsURL(), e, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return b
}

type identity struct {
	UA, Platform, Locale, CHPlatform string
	Languages                        []string
	Webdriver, CHMobile              bool
	ScreenW, ScreenH, Touch          int
	InnerW                           int
}

const identityJS = `(async () => ({
	UA: navigator.userAgent, Platform: navigator.platform, Locale: Intl.DateTimeFormat().resolvedOptions().locale,
	CHPlatform: navigator.userAgentData ? navigator.userAgentData.platform : "none",
	CHMobile: navigator.userAgentData ? navigator.userAgentData.mobile : false,
	Languages: navigator.languages, Webdriver: navigator.webdriver,
	ScreenW: screen.width, ScreenH: screen.height, Touch: navigator.maxTouchPoints, InnerW: innerWidth,
}))()`

func TestEmulation(t *testing.T) {
	srv, hdr := pageServer(t)
	windows := bb.EmulationFor(bb.BrowserSettings{OS: "windows", Fingerprint: json.RawMessage(`{"locales":["de-DE"]}`)}, bb.Viewport{Width: 1024, Height: 700}, true)
	mobile := bb.EmulationFor(bb.BrowserSettings{OS: "mobile"}, bb.Viewport{Width: 1280, Height: 720}, false)
	tests := []struct {
		name     string
		e        bb.Emulation
		viewport bb.Viewport
		want     identity
		wantCH   string // Sec-CH-UA-Platform header
		wantLang string // Accept-Language header
	}{
		{
			name: "windows de-DE", e: windows, viewport: bb.Viewport{Width: 1024, Height: 700}, wantCH: `"Windows"`, wantLang: "de-DE,de;q=0.9",
			want: identity{
				UA:       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
				Platform: "Win32", Locale: "de-DE", CHPlatform: "Windows", Languages: []string{"de-DE", "de"},
				ScreenW: 1920, ScreenH: 1080, InnerW: 1024,
			},
		},
		{
			name: "mobile", e: mobile, viewport: bb.Viewport{Width: 1280, Height: 720}, wantCH: `"Android"`, wantLang: "en-US,en;q=0.9",
			want: identity{
				UA:       "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
				Platform: "Linux armv81", Locale: "en-US", CHPlatform: "Android", CHMobile: true, Languages: []string{"en-US", "en"},
				ScreenW: 412, ScreenH: 915, Touch: 5, InnerW: 412,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBrowser(t, tt.e, tt.viewport)
			cl := newClient(t, b)
			for i := range 3 { // the first tab, then tabs opened after the agent started
				var sid string
				if i == 0 {
					sid = cl.existingPage(t)
				} else {
					sid = cl.newPage(t)
				}
				path := fmt.Sprintf("/%s/%d", strings.ReplaceAll(tt.name, " ", "-"), i)
				if msg := cl.navigate(t, sid, srv.URL+path); msg != "" {
					t.Fatalf("navigate: %s", msg)
				}
				var got identity
				cl.eval(t, sid, identityJS, &got)
				if diff := cmp.Diff(got, tt.want); diff != "" {
					t.Errorf("page %d identity (-got +want):\n%s", i, diff)
				}
				h := hdr.get(path)
				if got, want := h.Get("User-Agent"), tt.want.UA; got != want {
					t.Errorf("User-Agent header %q; want %q", got, want)
				}
				if got, want := h.Get("Accept-Language"), tt.wantLang; got != want {
					t.Errorf("Accept-Language header %q; want %q", got, want)
				}
				if got := h.Get("Sec-CH-UA-Platform"); got != tt.wantCH {
					t.Errorf("Sec-CH-UA-Platform header %q; want %q", got, tt.wantCH)
				}
			}
		})
	}
}

func TestStealth(t *testing.T) {
	srv, _ := pageServer(t)
	e := bb.EmulationFor(bb.BrowserSettings{AdvancedStealth: true}, bb.Viewport{Width: 1280, Height: 720}, false)
	b := startBrowser(t, e, bb.Viewport{Width: 1280, Height: 720})
	cl := newClient(t, b)
	sid := cl.newPage(t)
	if msg := cl.navigate(t, sid, srv.URL+"/s"); msg != "" {
		t.Fatal(msg)
	}
	var got identity
	cl.eval(t, sid, identityJS, &got)
	if got.Webdriver || strings.Contains(got.UA, "Headless") || got.CHPlatform != "Linux" || got.ScreenW < 1280 {
		t.Errorf("stealth identity %+v; want webdriver false, no Headless, Linux, a screen at least the window", got)
	}
}

func TestAllowedDomains(t *testing.T) {
	srv, hdr := pageServer(t)
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	u := func(host, path string) string { return "http://" + host + ":" + port + path }
	e := bb.EmulationFor(bb.BrowserSettings{AllowedDomains: []string{"Allowed.test"}}, bb.Viewport{}, false)
	var blockedMu sync.Mutex
	var blocked []string // what the sessions.navigations.blocked events would carry
	e.Blocked = func(url string) {
		blockedMu.Lock()
		blocked = append(blocked, url)
		blockedMu.Unlock()
	}
	// Every test host name resolves to the test server.
	b := startBrowser(t, e, bb.Viewport{Width: 1280, Height: 720}, "--host-resolver-rules=MAP *.test 127.0.0.1")
	cl := newClient(t, b)
	sid := cl.newPage(t)
	for _, tt := range []struct {
		url, wantErr string
	}{
		{url: u("allowed.test", "/a")},
		{url: u("a.b.allowed.test", "/b")},
		{url: u("other.test", "/c"), wantErr: "net::ERR_ABORTED"},
		{url: u("notallowed.test", "/d"), wantErr: "net::ERR_ABORTED"},
		{url: u("allowed.test.evil.test", "/e"), wantErr: "net::ERR_ABORTED"},
		{url: u("allowed.test", "/r?to="+u("other.test", "/f")), wantErr: "net::ERR_ABORTED"}, // redirect
		// Subframes are not filtered (spec §3.1).
		{url: u("allowed.test", "/outer?frame="+u("other.test", "/inner"))},
	} {
		got := cl.navigate(t, sid, tt.url)
		if got != tt.wantErr {
			t.Errorf("navigate %s: error %q; want %q", tt.url, got, tt.wantErr)
		}
	}
	for _, path := range []string{"/c", "/d", "/e", "/f"} {
		if hdr.get(path) != nil {
			t.Errorf("blocked navigation %s reached the server", path)
		}
	}
	blockedMu.Lock()
	if want := []string{u("other.test", "/c"), u("notallowed.test", "/d"), u("allowed.test.evil.test", "/e"), u("other.test", "/f")}; !slices.Equal(blocked, want) {
		t.Errorf("Blocked was called with %q; want %q", blocked, want)
	}
	blockedMu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for hdr.get("/inner") == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hdr.get("/inner") == nil {
		t.Error("the iframe to another domain was blocked")
	}
	// A tab opened by the page itself is checked too.
	var opened bool
	cl.eval(t, sid, `!!window.open("`+u("other.test", "/popup")+`")`, &opened)
	time.Sleep(500 * time.Millisecond)
	if hdr.get("/popup") != nil {
		t.Error("a popup navigated outside allowedDomains")
	}
}

func TestIgnoreCertificateErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<title>tls</title>")
	}))
	t.Cleanup(srv.Close)
	for _, ignore := range []bool{true, false} {
		e := bb.EmulationFor(bb.BrowserSettings{IgnoreCertificateErrors: ignore}, bb.Viewport{}, false)
		b := startBrowser(t, e, bb.Viewport{Width: 1280, Height: 720})
		cl := newClient(t, b)
		got := cl.navigate(t, cl.newPage(t), srv.URL+"/")
		want := "net::ERR_CERT_AUTHORITY_INVALID"
		if ignore {
			want = ""
		}
		if got != want {
			t.Errorf("ignoreCertificateErrors %v: navigate to a self-signed server: %q; want %q", ignore, got, want)
		}
	}
}
