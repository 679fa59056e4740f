package liveview

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
	e *testEnv
}

func newBrowser(t *testing.T, e *testEnv) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.e.hs.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestDashboard(t *testing.T) {
	e, _ := fakeEnv(t)
	running := e.create(t)
	released := e.create(t)
	if _, err := e.m.ReleaseSession(t.Context(), e.projectID, released.ID); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	origin := map[string]string{"Origin": e.hs.URL}

	resp, _ := b.do("GET", "/?status=RUNNING", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "ui/?status=RUNNING" {
		t.Errorf("GET / = %d, Location %q; want 303 to ui/, the query kept", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.do("GET", "/ui/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="apiKey"`) || strings.Contains(body, running.ID) {
		t.Fatalf("GET /ui/ signed out = %d, want the sign-in form", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("dashboard CSP = %q", got)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("the dashboard can be framed")
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("dashboard Referrer-Policy = %q; want same-origin, so that its forms send their Origin", got)
	}

	// Sign-in: a wrong key, another site's form, then the right key.
	resp, body = b.do("POST", "/ui/login", url.Values{"apiKey": {"bb_wrong"}}, origin)
	if resp.StatusCode != 401 || !strings.Contains(body, "not valid") {
		t.Errorf("wrong key = %d", resp.StatusCode)
	}
	for _, o := range []string{"https://evil.example", "null"} {
		resp, _ = b.do("POST", "/ui/login", url.Values{"apiKey": {e.key}}, map[string]string{"Origin": o})
		if resp.StatusCode != 403 {
			t.Errorf("sign-in from Origin %s = %d; want 403", o, resp.StatusCode)
		}
	}
	resp, _ = b.do("POST", "/ui/login", url.Values{"apiKey": {e.key}}, origin)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "./" {
		t.Fatalf("sign-in = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	// No Path: the browser scopes the cookie to /ui, where /ui/login is (F14).
	if len(cookies) != 1 || cookies[0].Name != cookieName || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode ||
		strings.Contains(cookies[0].Value, e.key) || cookies[0].Path != "" || cookies[0].Secure {
		t.Fatalf("sign-in cookie = %+v", cookies)
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly") || strings.Contains(resp.Header.Get("Set-Cookie"), "Path=") {
		t.Errorf("Set-Cookie %q", resp.Header.Get("Set-Cookie"))
	}
	for _, p := range []string{"/", "/debug/x/devtools/inspector.html"} {
		u, _ := url.Parse(e.hs.URL + p)
		if c := b.c.Jar.Cookies(u); len(c) != 0 {
			t.Errorf("the sign-in cookie is sent to %s", p)
		}
	}

	// A script on the dashboard's origin (the live view and DevTools share it) reads no
	// signed-in page and posts no form, even with the cookie.
	script := map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin", "Origin": e.hs.URL}
	if _, body := b.do("GET", "/ui/", nil, script); !strings.Contains(body, `name="apiKey"`) || strings.Contains(body, running.ID) || csrfField.MatchString(body) {
		t.Error("a script's request gets the signed-in session list")
	}
	if resp, _ := b.do("GET", "/ui/sessions/"+running.ID, nil, script); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a script's request for a session page = %d; want the redirect to sign in", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/ui/sessions/"+running.ID+"/logs", nil, script); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a script's request for logs = %d; want 401", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/ui/login", url.Values{"apiKey": {e.key}}, script); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a script's sign-in = %d; want 403", resp.StatusCode)
	}
	navigate := map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}
	if resp, body := b.do("GET", "/ui/", nil, navigate); resp.StatusCode != 200 || !strings.Contains(body, running.ID) {
		t.Errorf("a navigation = %d, lacks the sessions", resp.StatusCode)
	} else if resp.Header.Get("Cross-Origin-Opener-Policy") != "same-origin" {
		t.Errorf("Cross-Origin-Opener-Policy = %q; want same-origin", resp.Header.Get("Cross-Origin-Opener-Policy"))
	}

	resp, body = b.do("GET", "/ui/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, running.ID) || !strings.Contains(body, released.ID) {
		t.Fatalf("session list = %d, lacks the sessions", resp.StatusCode)
	}
	if strings.Contains(body, e.key) {
		t.Error("the page shows the API key")
	}
	csrf := csrfField.FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token in the page")
	}
	_, body = b.do("GET", "/ui/?status=RUNNING", nil, nil)
	if !strings.Contains(body, running.ID) || strings.Contains(body, released.ID) {
		t.Error("status=RUNNING does not filter")
	}
	if _, body = b.do("GET", "/ui/?status=nope", nil, nil); !strings.Contains(body, "status must be one of") {
		t.Error("a bad status filter is not explained")
	}

	// The session page: live view and pages of a running session.
	resp, body = b.do("GET", "/ui/sessions/"+running.ID, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("session page = %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`<iframe id="live" src="http://`, "/debug/", "/view?sessionId=" + running.ID, `data-page="` + fakePage1 + `"`,
		`href="` + running.ID + `/logs"`, `href="` + running.ID + `/downloads"`} {
		if !strings.Contains(body, want) {
			t.Errorf("session page lacks %q", want)
		}
	}
	if resp, _ := b.do("GET", "/ui/sessions/"+bb.NewID(), nil, nil); resp.StatusCode != 404 {
		t.Errorf("unknown session page = %d", resp.StatusCode)
	}

	// Logs and downloads come from the API, with the signed-in key.
	if resp, _ := b.do("GET", "/ui/sessions/"+running.ID+"/logs", nil, nil); resp.StatusCode != 200 {
		t.Errorf("logs = %d", resp.StatusCode)
	}
	r := e.api.last()
	if r == nil || r.URL.Path != "/v1/sessions/"+running.ID+"/logs" || r.Header.Get("X-BB-API-Key") != e.key || r.Header.Get("Cookie") != "" {
		t.Errorf("API request = %+v", r)
	}
	if resp, _ := b.do("GET", "/ui/sessions/"+running.ID+"/secrets", nil, nil); resp.StatusCode != 404 {
		t.Errorf("unknown artifact = %d", resp.StatusCode)
	}

	// Release: refused without the CSRF token or from another site, done with it.
	release := "/ui/sessions/" + running.ID + "/release"
	for name, tc := range map[string]struct {
		form   url.Values
		header map[string]string
	}{
		"no token":    {url.Values{}, origin},
		"wrong token": {url.Values{"csrf": {"x" + csrf[1]}}, origin},
		"other site":  {url.Values{"csrf": {csrf[1]}}, map[string]string{"Origin": "https://evil.example"}},
		"a script":    {url.Values{"csrf": {csrf[1]}}, script},
	} {
		if resp, _ := b.do("POST", release, tc.form, tc.header); resp.StatusCode != 403 {
			t.Errorf("release with %s = %d; want 403", name, resp.StatusCode)
		}
	}
	if s, _ := e.m.Session(t.Context(), e.projectID, running.ID); s.Status != bb.StatusRunning {
		t.Fatalf("a refused release ended the session (%s)", s.Status)
	}
	resp, _ = b.do("POST", release, url.Values{"csrf": {csrf[1]}}, origin)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../"+running.ID {
		t.Errorf("release = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if s, _ := e.m.Session(t.Context(), e.projectID, running.ID); s.Status != bb.StatusCompleted {
		t.Errorf("status after release = %s", s.Status)
	}

	// Sign out: the cookie stops working.
	resp, _ = b.do("POST", "/ui/logout", url.Values{"csrf": {csrf[1]}}, origin)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign out = %d", resp.StatusCode)
	}
	if _, body := b.do("GET", "/ui/", nil, map[string]string{"Cookie": cookieName + "=" + cookies[0].Value}); !strings.Contains(body, `name="apiKey"`) {
		t.Error("the cookie still signs in after signing out")
	}
	if resp, _ := b.do("GET", "/ui/sessions/"+running.ID+"/logs", nil, map[string]string{"Cookie": cookieName + "=" + cookies[0].Value}); resp.StatusCode != 401 {
		t.Errorf("logs after sign-out = %d", resp.StatusCode)
	}
}

func TestSignins(t *testing.T) {
	ctx := t.Context()
	settings := &memSettings{}
	ss, err := newSignins(ctx, time.Hour, settings)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c1, si := ss.create("key1", now)
	if got := ss.get(ctx, c1, now.Add(59*time.Minute)); got == nil || got.apiKey != "key1" || got.csrf != si.csrf {
		t.Errorf("sign-in within its lifetime = %+v; want %+v", got, si)
	}
	if got := ss.get(ctx, c1, now.Add(time.Hour)); got != nil {
		t.Error("sign-in outlived its lifetime")
	}
	c2, _ := ss.create("key2", now)
	if c1 == c2 || len(c2) < 40 || strings.Contains(c2, "key2") {
		t.Errorf("cookies %q, %q: want long, distinct and opaque", c1, c2)
	}
	for _, forged := range []string{"", "forged", c2[:len(c2)-1], c2 + "A", strings.Repeat("A", 5000)} {
		if ss.get(ctx, forged, now) != nil {
			t.Errorf("cookie %.40q signs in", forged)
		}
	}

	// Another node (or this one after a restart) shares the settings: it opens the
	// cookie, and a sign-out on either ends every sign-in of that key on both.
	other, err := newSignins(ctx, time.Hour, settings)
	if err != nil {
		t.Fatal(err)
	}
	if other.get(ctx, c1, now) == nil {
		t.Error("a node sharing the settings does not honour the sign-in")
	}
	c1b, _ := ss.create("key1", now.Add(time.Second))
	if err := ss.remove(ctx, c1, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ss.get(ctx, c1, now.Add(3*time.Second)) != nil || ss.get(ctx, c1b, now.Add(3*time.Second)) != nil {
		t.Error("a sign-in of the key outlived its sign-out on the same node")
	}
	if other.get(ctx, c1, now.Add(2*time.Second+signoutCacheTTL)) != nil {
		t.Error("a sign-in outlived its sign-out on another node")
	}
	if ss.get(ctx, c2, now.Add(3*time.Second)) == nil {
		t.Error("a sign-out of one key ended another key's sign-in")
	}
	c1c, _ := other.create("key1", now.Add(4*time.Second))
	if ss.get(ctx, c1c, now.Add(5*time.Second)) == nil {
		t.Error("a sign-in made after the sign-out is refused")
	}

	// A server with other settings (another cluster) opens none of these cookies.
	stranger, err := newSignins(ctx, time.Hour, &memSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if stranger.get(ctx, c2, now) != nil {
		t.Error("a cookie sealed by another server signs in")
	}
}

// TestSigninsFailClosed checks that a sign-in whose sign-out time cannot be read is
// not honoured.
func TestSigninsFailClosed(t *testing.T) {
	ctx := t.Context()
	settings := &failingSettings{}
	ss, err := newSignins(ctx, time.Hour, settings)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c, _ := ss.create("key", now)
	settings.fail = true
	if ss.get(ctx, c, now) != nil {
		t.Error("sign-in honoured while the settings could not be read")
	}
}

type failingSettings struct {
	memSettings
	fail bool
}

func (f *failingSettings) SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error) {
	if f.fail {
		return nil, errors.New("database down")
	}
	return f.memSettings.SettingOrInit(ctx, name, init)
}

// FuzzSigninCookie checks that no cookie value crashes the opener or signs in.
func FuzzSigninCookie(f *testing.F) {
	ss, err := newSignins(context.Background(), time.Hour, &memSettings{})
	if err != nil {
		f.Fatal(err)
	}
	c, _ := ss.create("key", time.Now())
	f.Add(c)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, cookie string) {
		if cookie == c {
			return
		}
		if si := ss.get(context.Background(), cookie, time.Now()); si != nil {
			t.Errorf("cookie %q signs in as %q", cookie, si.apiKey)
		}
	})
}
