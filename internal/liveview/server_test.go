package liveview

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
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

func TestViewPage(t *testing.T) {
	e, _ := fakeEnv(t)
	s := e.create(t)
	tok := e.token(t, s.ID, false)
	resp, body := get(t, e.hs.URL+"/debug/"+tok+"/view?sessionId="+s.ID+"&navbar=false&page="+fakePage1, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET view = %d %s", resp.StatusCode, body)
	}
	h := resp.Header
	if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors *") || !strings.Contains(got, "script-src 'self'") {
		t.Errorf("CSP = %q; want an embeddable page with its own scripts only", got)
	}
	for k, want := range map[string]string{"X-Frame-Options": "", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
		"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	for _, want := range []string{`class="no-navbar"`, `data-session="` + s.ID + `"`, `data-page="` + fakePage1 + `"`, `data-readonly="false"`, `<script src="live.js">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("the page has an inline script, which its CSP forbids")
	}
	resp, body = get(t, e.hs.URL+"/debug/"+e.token(t, s.ID, true)+"/view", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-readonly="true"`) || !strings.Contains(body, "read-only") {
		t.Errorf("read-only view = %d; body lacks read-only", resp.StatusCode)
	}
	for _, f := range []string{"live.js", "live.css"} {
		if resp, _ := get(t, e.hs.URL+"/debug/"+tok+"/"+f, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", f, resp.StatusCode)
		}
	}
	resp, body = get(t, e.hs.URL+"/debug/"+tok+"/status", nil)
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != 200 || st["sessionId"] != s.ID {
		t.Errorf("GET status = %d %s", resp.StatusCode, body)
	}
}

func TestLiveViewRefused(t *testing.T) {
	e, fb := fakeEnv(t)
	s := e.create(t)
	tok := e.token(t, s.ID, false)
	ended := e.create(t)
	endedTok := e.token(t, ended.ID, false)
	if _, err := e.m.ReleaseSession(t.Context(), e.projectID, ended.ID); err != nil {
		t.Fatal(err)
	}
	short, err := e.m.LiveView(t.Context(), e.projectID, s.ID, time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(short.Expires) + 10*time.Millisecond)

	tests := []struct {
		name, path string
		want       int
		wantMsg    string
	}{
		{name: "altered token", path: "/debug/" + strings.Replace(tok, s.ID, ended.ID, 1) + "/view", want: 401, wantMsg: "invalid"},
		{name: "truncated token", path: "/debug/" + tok[:len(tok)-3] + "/status", want: 401, wantMsg: "invalid"},
		{name: "expired token", path: "/debug/" + short.Token + "/view", want: 401, wantMsg: "expired"},
		{name: "expired token, DevTools", path: "/debug/" + short.Token + "/devtools/inspector.html", want: 401, wantMsg: "expired"},
		{name: "ended session", path: "/debug/" + endedTok + "/view", want: 410, wantMsg: "ended"},
		{name: "read-only DevTools", path: "/debug/" + e.token(t, s.ID, true) + "/devtools/inspector.html", want: 403, wantMsg: "read-only"},
		{name: "DevTools outside its directory", path: "/debug/" + tok + "/devtools/..%2f..%2fjson/list", want: 404},
		{name: "unknown asset", path: "/debug/" + tok + "/secret.txt", want: 404},
		{name: "unknown dashboard asset", path: "/ui/assets/view.html", want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, e.hs.URL+tt.path, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET = %d %s; want %d", resp.StatusCode, body, tt.want)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil || v["statusCode"] != float64(tt.want) {
				t.Errorf("body %s is not the API error shape", body)
			}
			if msg, _ := v["message"].(string); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message = %q; want %q", msg, tt.wantMsg)
			}
		})
	}
	// A browser navigating to a dead link gets a page that says why.
	resp, body := get(t, e.hs.URL+"/debug/"+endedTok+"/view", map[string]string{"Accept": "text/html,application/xhtml+xml"})
	if resp.StatusCode != 410 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "has ended") {
		t.Errorf("HTML error = %d %s", resp.StatusCode, body)
	}
	if n := len(fb.commands("Target.getTargets")); n != 0 {
		t.Errorf("refused requests reached the browser (%d commands)", n)
	}
}

// A fake browser's DevTools endpoint serves no frontend; the proxy passes its answer
// through with the browser's own host, and nothing of the viewer's.
func TestDevToolsProxyRequest(t *testing.T) {
	seen := make(chan *http.Request, 1)
	fb := newFakeBrowser(t)
	fb.hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/json/list" {
			w.Write([]byte(`[]`))
			return
		}
		seen <- r
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Set-Cookie", "x=y")
		io.WriteString(w, `<meta http-equiv="Content-Security-Policy" content="default-src 'self'; connect-src data: ws://127.0.0.1:*;"><p>devtools`)
	})
	e := newTestEnv(t, &chrometest.Launcher{DevToolsURL: fb.url()})
	s := e.create(t)
	tok := e.token(t, s.ID, false)
	resp, body := get(t, e.hs.URL+"/debug/"+tok+"/devtools/inspector.html?ws=x", map[string]string{"Cookie": cookieName + "=secret", "Authorization": "Bearer x"})
	if resp.StatusCode != 200 {
		t.Fatalf("GET inspector = %d %s", resp.StatusCode, body)
	}
	r := <-seen
	if r.URL.Path != "/devtools/inspector.html" || r.URL.RawQuery != "" || r.Host != fb.hs.Listener.Addr().String() ||
		r.Header.Get("Cookie") != "" || r.Header.Get("Authorization") != "" {
		t.Errorf("browser got %s %q (host %s) with headers %v", r.URL.Path, r.URL.RawQuery, r.Host, r.Header)
	}
	if !strings.Contains(body, "connect-src 'self' data: ws://127.0.0.1:*") {
		t.Errorf("CSP not opened to browserd's websocket: %s", body)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("the browser's Set-Cookie reached the viewer")
	}
}
