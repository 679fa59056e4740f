package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testUpstream is an upstream HTTP proxy for the tests: it answers every absolute-form
// request itself, for any host, so no DNS is needed (Chromium sends absolute URLs to
// HTTP proxies), and records the hosts it was asked for. With user set it wants basic
// auth.
type testUpstream struct {
	name, user, pass string
	srv              *httptest.Server

	mu    sync.Mutex
	hosts []string
}

func startTestUpstream(t *testing.T, name, user, pass string) *testUpstream {
	t.Helper()
	u := &testUpstream{name: name, user: user, pass: pass}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *testUpstream) url() string { return u.srv.URL }

func (u *testUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hosts)
}

func (u *testUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if u.user != "" {
		user, pass, ok := parseProxyAuth(r.Header.Get("Proxy-Authorization"))
		if !ok || user != u.user || pass != u.pass {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			http.Error(w, "proxy auth", http.StatusProxyAuthRequired)
			return
		}
	}
	if r.Method == http.MethodConnect || !r.URL.IsAbs() {
		http.Error(w, "test upstream: absolute http only", http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.hosts = append(u.hosts, r.URL.Hostname())
	u.mu.Unlock()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch {
	case strings.HasSuffix(r.URL.Path, ".gif"):
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
	case r.URL.Path == "/big":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(make([]byte, 1<<20)) // test server: a short write fails the test's read
	default:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<title>%s %s</title>%s`, u.name, r.URL.Hostname(), r.URL.Query().Get("html"))
	}
}

func parseProxyAuth(h string) (user, pass string, ok bool) {
	r := &http.Request{Header: http.Header{"Authorization": {h}}}
	return r.BasicAuth()
}

// page is a CDP connection to a session's page, through the gateway.
type page struct {
	c   *cdpClient
	sid string
}

func openPage(t *testing.T, connectURL string) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := mustDial(t, ctx, connectURL)
	sid, err := c.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &page{c: c, sid: sid}
}

// navigate loads url and returns the navigation's error text, "" when it loaded.
func (p *page) navigate(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.c.call(ctx, p.sid, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		return nav.ErrorText
	}
	for {
		var done bool
		p.eval(t, `document.readyState === "complete" && location.href !== "about:blank"`, &done)
		if done {
			return ""
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not load", url)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *page) eval(t *testing.T, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	if err := p.c.call(ctx, p.sid, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate %s: %s", expr, r.ExceptionDetails)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("evaluate %s = %s: %v", expr, r.Result.Value, err)
	}
}

func (p *page) title(t *testing.T) string {
	t.Helper()
	var s string
	p.eval(t, "document.title", &s)
	return s
}

type projectUsage struct {
	BrowserMinutes int64 `json:"browserMinutes"`
	ProxyBytes     int64 `json:"proxyBytes"`
}

func TestProxies(t *testing.T) {
	a := startTestUpstream(t, "A", "", "")
	b := startTestUpstream(t, "B", "bob", "s3cret")
	direct := pageServer(t, "direct page")
	srv := startServer(t, t.TempDir(), defaultEnv())
	sess := srv.create(t, testAPIKey, map[string]any{"proxies": []map[string]any{
		{"type": "external", "server": a.url(), "domainPattern": `.*\.a\.test`},
		{"type": "external", "server": b.url(), "username": "bob", "password": "s3cret", "domainPattern": `(.*\.)?b\.test`},
		{"type": "external", "server": b.url(), "username": "bob", "password": "wrong", "domainPattern": `bad\.test`},
		{"type": "none", "domainPattern": `127\.0\.0\.1`},
	}})
	if strings.Contains(fmt.Sprint(browserArgs(t, srv.DataDir)), "s3cret") {
		t.Error("an upstream password is on Chromium's command line")
	}
	p := openPage(t, sess.ConnectURL)

	for _, tt := range []struct{ url, title string }{
		{url: "http://www.a.test/x", title: "A www.a.test"},
		{url: "http://b.test/y", title: "B b.test"},
		{url: "http://deep.sub.b.test/", title: "B deep.sub.b.test"},
		{url: direct.URL, title: "direct page"},
	} {
		if msg := p.navigate(t, tt.url); msg != "" {
			t.Fatalf("navigate %s: %s", tt.url, msg)
		}
		if got := p.title(t); got != tt.title {
			t.Errorf("%s: title %q; want %q", tt.url, got, tt.title)
		}
	}
	// Each upstream saw only its hosts (favicons included); the none rule went direct.
	for _, tt := range []struct {
		u    *testUpstream
		want []string
	}{{a, []string{"www.a.test"}}, {b, []string{"b.test", "deep.sub.b.test"}}} {
		got := slices.Compact(slices.Sorted(slices.Values(tt.u.seen())))
		if !slices.Equal(got, tt.want) {
			t.Errorf("upstream %s saw hosts %q; want %q", tt.u.name, got, tt.want)
		}
	}

	// Wrong credentials: the page says so.
	if msg := p.navigate(t, "http://bad.test/"); msg != "" {
		t.Fatalf("navigate bad.test: %s", msg)
	}
	var text string
	p.eval(t, "document.body.innerText", &text)
	if !strings.Contains(text, "refused the credentials") || strings.Contains(text, "wrong") {
		t.Errorf("page for wrong credentials: %q; want a clear error without the password", text)
	}

	// proxyBytes: 1 MiB through A, nothing counted for the direct page.
	var n int
	p.eval(t, `fetch("http://big.a.test/big").then(r => r.arrayBuffer()).then(b => b.byteLength)`, &n)
	if n != 1<<20 {
		t.Fatalf("fetched %d bytes; want 1 MiB", n)
	}
	ended := srv.release(t, testAPIKey, sess.ID)
	var got struct {
		ProxyBytes int64 `json:"proxyBytes"`
	}
	callJSON(t, srv.URL, "GET", "/v1/sessions/"+ended.ID, testAPIKey, nil, http.StatusOK, &got)
	if got.ProxyBytes < 1<<20 || got.ProxyBytes > 1<<20+256<<10 {
		t.Errorf("proxyBytes = %d; want 1 MiB plus the small pages and headers", got.ProxyBytes)
	}
	var projects []struct {
		ID string `json:"id"`
	}
	callJSON(t, srv.URL, "GET", "/v1/projects", testAPIKey, nil, http.StatusOK, &projects)
	var u projectUsage
	callJSON(t, srv.URL, "GET", "/v1/projects/"+projects[0].ID+"/usage", testAPIKey, nil, http.StatusOK, &u)
	if u.ProxyBytes != got.ProxyBytes {
		t.Errorf("usage proxyBytes = %d; want the session's %d", u.ProxyBytes, got.ProxyBytes)
	}
	t.Logf("proxyBytes after 1 MiB through an upstream: %d", got.ProxyBytes)
}

// browserArgs returns the command lines of the Chromium processes under dir.
func browserArgs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pid := range browserPIDs(t, dir) {
		b, err := readCmdline(pid)
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

func readCmdline(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " "), err
}

func TestManagedProxies(t *testing.T) {
	// Without --proxy-upstream, proxies:true is refused before anything starts.
	srv := startServer(t, t.TempDir(), defaultEnv())
	for _, tt := range []struct {
		body    map[string]any
		wantMsg string
	}{
		{map[string]any{"proxies": true}, "body/proxies: this server has no managed proxies"},
		{map[string]any{"proxies": []map[string]any{{"type": "browserbase", "geolocation": map[string]any{"country": "US"}}}}, "body/proxies/0: this server has no managed proxies"},
		{map[string]any{"proxies": []map[string]any{{"type": "external"}}}, "body/proxies/0/server is required for an external proxy"},
		{map[string]any{"proxies": []map[string]any{{"type": "external", "server": "ftp://x"}}}, "body/proxies/0/server must use the scheme http, https or socks5"},
		{map[string]any{"proxies": []map[string]any{{"type": "none"}, {"type": "none", "domainPattern": "*.x"}}}, "body/proxies/1/domainPattern is not a valid regular expression"},
		{map[string]any{"proxies": []map[string]any{{"type": "external", "server": "http://p", "password": 5}}}, "body/proxies/0/password must be a string"},
		{map[string]any{"proxies": "all"}, "body/proxies must be a boolean or an array of proxy rules"},
	} {
		code, body := call(t, srv.URL, "POST", "/v1/sessions", testAPIKey, tt.body)
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(body, &e) // checked through the message below
		if code != http.StatusBadRequest || !strings.HasPrefix(e.Message, tt.wantMsg) {
			t.Errorf("create %v = %d %s; want 400 %q", tt.body, code, body, tt.wantMsg)
		}
	}
	var list []json.RawMessage
	callJSON(t, srv.URL, "GET", "/v1/sessions", testAPIKey, nil, http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("refused creates left %d sessions", len(list))
	}
	srv.stop(t)

	// With upstreams, proxies:true goes through one of them.
	m := startTestUpstream(t, "M", "mia", "pw")
	up := strings.Replace(m.url(), "http://", "http://mia:pw@", 1)
	srv = startServer(t, t.TempDir(), defaultEnv(), "--proxy-upstream", up)
	sess := srv.create(t, testAPIKey, map[string]any{"proxies": true})
	p := openPage(t, sess.ConnectURL)
	if msg := p.navigate(t, "http://anything.example/"); msg != "" {
		t.Fatal(msg)
	}
	if got := p.title(t); got != "M anything.example" {
		t.Errorf("title %q; want the managed upstream's page", got)
	}
	if !slices.Contains(m.seen(), "anything.example") {
		t.Errorf("managed upstream saw %v", m.seen())
	}
}

func TestBrowserSettings(t *testing.T) {
	a := startTestUpstream(t, "A", "", "")
	srv := startServer(t, t.TempDir(), defaultEnv())
	sess := srv.create(t, testAPIKey, map[string]any{
		"proxies": []map[string]any{{"type": "external", "server": a.url()}},
		"browserSettings": map[string]any{
			"viewport": map[string]any{"width": 1111, "height": 777}, "os": "mac",
			"fingerprint":    map[string]any{"locales": []string{"fr-FR"}},
			"allowedDomains": []string{"allowed.test"}, "blockAds": true,
		},
	})
	p := openPage(t, sess.ConnectURL)
	// The page loads an ad from a host on the list and a pixel from another host.
	html := `<img id=ad src="http://pagead2.googlesyndication.com/ad.gif"><img id=px src="http://cdn.other.test/px.gif">`
	if msg := p.navigate(t, "http://www.allowed.test/?html="+url.QueryEscape(html)); msg != "" {
		t.Fatalf("navigate to an allowed subdomain: %s", msg)
	}
	var got struct {
		W, H           int
		UA, Lang, Plat string
		Webdriver      bool
		AdOK, PixelOK  bool
	}
	p.eval(t, `new Promise(res => {
		const done = img => img.complete ? Promise.resolve() : new Promise(r => { img.onload = img.onerror = r; });
		Promise.all([done(ad), done(px)]).then(() => res({W: innerWidth, H: innerHeight, UA: navigator.userAgent, Plat: navigator.platform,
			Lang: navigator.language, Webdriver: navigator.webdriver, AdOK: ad.naturalWidth > 0, PixelOK: px.naturalWidth > 0}));
	})`, &got)
	if got.W != 1111 || got.H != 777 {
		t.Errorf("viewport %d×%d; want 1111×777", got.W, got.H)
	}
	if !strings.Contains(got.UA, "Macintosh") || strings.Contains(got.UA, "Headless") || got.Plat != "MacIntel" || got.Lang != "fr-FR" || got.Webdriver {
		t.Errorf("identity %+v; want a Mac user agent, fr-FR, no webdriver", got)
	}
	if got.AdOK || !got.PixelOK {
		t.Errorf("ad loaded %v, pixel loaded %v; want the ad blocked, the pixel (subresource of another domain) loaded", got.AdOK, got.PixelOK)
	}
	if slices.Contains(a.seen(), "pagead2.googlesyndication.com") {
		t.Error("the ad host reached the upstream")
	}
	if msg := p.navigate(t, "http://other.test/"); msg != "net::ERR_ABORTED" {
		t.Errorf("navigate outside allowedDomains: %q; want net::ERR_ABORTED", msg)
	}
	if slices.Contains(a.seen(), "other.test") {
		t.Error("the blocked navigation reached the upstream")
	}
}
