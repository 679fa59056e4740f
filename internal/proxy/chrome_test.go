package proxy_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/proxy"
)

// TestChromeRefused is finding F3 with a real Chromium whose only way out is its session
// proxy, as browserd runs it: a page navigating to the server's loopback (in any spelling
// Chromium accepts; it canonicalizes http://2130706433/ and http://0x7f.1/ to 127.0.0.1
// before asking the proxy) reaches nothing, and the proxy logs why. With private networks
// allowed the same navigation reaches the site.
func TestChromeRefused(t *testing.T) {
	var hits atomic.Int64
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "reached")
	}))
	defer site.Close()
	_, port, _ := net.SplitHostPort(site.Listener.Addr().String())

	var logBuf proxy.SyncBuffer
	open := launchBehind(t, proxy.Config{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	for _, u := range []string{"http://127.0.0.1:" + port + "/metrics", "http://2130706433:" + port + "/a",
		"http://0x7f.1:" + port + "/b", "http://localhost:" + port + "/c", "http://[::ffff:7f00:1]:" + port + "/d"} {
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
	if n := hits.Load(); n != 0 {
		t.Errorf("Chromium reached the loopback site %d times", n)
	}

	launchBehind(t, proxy.Config{AllowPrivate: true})("http://127.0.0.1:" + port + "/ok")
	for hits.Load() == 0 && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(50 * time.Millisecond)
	}
	if hits.Load() == 0 {
		t.Error("with private networks allowed Chromium did not reach the loopback site")
	}
}

// launchBehind starts a real Chromium whose egress is a session proxy with cfg and
// returns a function that opens a tab at a URL.
func launchBehind(t *testing.T, cfg proxy.Config) func(string) {
	t.Helper()
	b := chrometest.Start(t, bb.LaunchOptions{})
	p, err := proxy.New("test", bb.NetworkPlan{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	b.SetEgress(func(c net.Conn) {
		if err := p.ServeConn(c); err != nil {
			c.Close() // the proxy is closed: the browser sees a refused connection
		}
	})
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
