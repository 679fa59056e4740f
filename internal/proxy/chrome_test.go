package proxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestChromeRefused is finding F3 with a real Chromium behind the session proxy, as
// browserd launches it: a page navigating to the server's loopback (in any spelling
// Chromium accepts; it canonicalizes http://2130706433/ and http://0x7f.1/ to
// 127.0.0.1 before asking the proxy) reaches nothing, and the proxy logs why. With
// private networks allowed the same navigation reaches the site.
func TestChromeRefused(t *testing.T) {
	chrometest.Chrome(t) // skips (or fails with BROWSERD_REQUIRE_CHROME=1) without Chromium
	site := startCounting(t)
	var logBuf syncBuffer
	p := startProxy(t, bb.NetworkPlan{}, Config{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	open := launchBehind(t, p)
	for _, u := range []string{"http://127.0.0.1:" + site.port + "/metrics", "http://2130706433:" + site.port + "/a",
		"http://0x7f.1:" + site.port + "/b", "http://localhost:" + site.port + "/c", "http://[::ffff:7f00:1]:" + site.port + "/d"} {
		open(u)
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(logBuf.String(), "proxy refused a destination") < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // the tabs load in the background
	}
	got := logBuf.String()
	for _, want := range []string{"host=127.0.0.1 ", "host=localhost ", "host=::ffff:7f00:1 ", "class=loopback"} {
		if !strings.Contains(got, want) {
			t.Errorf("the proxy log does not say %q:\n%s", want, got)
		}
	}
	if n := site.hits.Load(); n != 0 {
		t.Errorf("Chromium reached the loopback site %d times", n)
	}

	allowed := startProxy(t, bb.NetworkPlan{}, Config{AllowPrivate: true})
	launchBehind(t, allowed)("http://127.0.0.1:" + site.port + "/ok")
	for site.hits.Load() == 0 && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(50 * time.Millisecond)
	}
	if site.hits.Load() == 0 {
		t.Error("with private networks allowed Chromium did not reach the loopback site")
	}
}

// launchBehind starts a real Chromium whose only proxy is p, with loopback not
// bypassed (as browserd launches it), and returns a function that opens a tab at a URL.
func launchBehind(t *testing.T, p *Proxy) func(string) {
	t.Helper()
	b := chrometest.Start(t, bb.LaunchOptions{Args: []string{"--proxy-server=http://" + p.Addr(), "--proxy-bypass-list=<-loopback>"}})
	dt, err := url.Parse(b.DevToolsURL())
	if err != nil {
		t.Fatal(err)
	}
	return func(u string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+dt.Host+"/json/new?"+u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("open %s: %s", u, resp.Status)
		}
	}
}
