package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/chrome"
)

// pageText opens u in a new page of the browser and returns the text it shows (an
// error page's too), or the failing call's error. Each URL gets a fresh page, and a
// crash ends the wait for an answer: Chromium kills some renderers that show a missing
// file:// below a directory that exists (a "bad message" kill, seen when the server is
// not root and the run dir's parents appear inside the sandbox as bare mount points),
// and a crashed page answers no later call.
func (c *cdpClient) pageText(ctx context.Context, u string) string {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return "create page: " + err.Error()
	}
	defer c.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, nil)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		return "attach: " + err.Error()
	}
	sid := attached.SessionID
	if err := c.call(ctx, sid, "Inspector.enable", nil, nil); err != nil { // reports a crash
		return "inspector: " + err.Error()
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.call(ctx, sid, "Page.navigate", map[string]any{"url": u}, &nav); err != nil {
		return "navigate: " + err.Error()
	}
	time.Sleep(500 * time.Millisecond) // file:// and error pages commit at once; loopback pages too
	var ev struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	expr := "document.documentElement ? document.documentElement.innerText : ''"
	if err := c.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &ev); err != nil {
		return "evaluate: " + err.Error()
	}
	return nav.ErrorText + " " + ev.Result.Value
}

// TestSecurityReview reruns the reproductions of findings F1 and F3 of the security
// review (research/security-review.md) against the real server: a client with one
// session's connectUrl reads none of the server's files, and its browser reaches
// neither the server's own endpoints nor other sessions' browsers nor private
// networks; with --allow-private-networks, loopback test pages load but the server's
// own ports stay closed.
//
// Not parallel: it checks every loopback port this process listens on.
func TestSecurityReview(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<title>loopback</title>LOOPBACK-PAGE"))
	}))
	defer page.Close()
	for _, allow := range []bool{false, true} {
		t.Run("allow-private-networks="+map[bool]string{false: "off", true: "on"}[allow], func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			arg := "--allow-private-networks=false"
			if allow {
				arg = "--allow-private-networks=true"
			}
			srv := startServer(t, dataDir, defaultEnv(), arg, "--metrics-token", "metrics-token-of-32-characters-xx")
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			// recordSession off: with the recorder, a page that navigates to a file:// that
			// does not exist sometimes hangs (a known issue, see the stop note); this test
			// is about what the browser can reach.
			a := srv.create(t, testAPIKey, map[string]any{"keepAlive": true, "browserSettings": map[string]any{"recordSession": false}})
			b := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
			cdpA := mustDial(t, ctx, a.ConnectURL)
			if _, err := cdpA.attachPage(ctx); err != nil { // the session's one page is there
				t.Fatal(err)
			}

			// F1: the data dir, the database and its secrets, another session's profile.
			for _, u := range []string{
				"file://" + dataDir + "/", "file://" + filepath.Join(dataDir, "browserd.db"),
				"file://" + filepath.Join(dataDir, "run") + "/", "file:///etc/shadow", "file:///proc/1/environ",
			} {
				got := cdpA.pageText(ctx, u)
				t.Logf("%s → %.120q", u, got)
				if strings.Contains(got, "browserd.db") || strings.Contains(got, "SQLite") ||
					strings.Contains(got, b.ID) || strings.Contains(got, "root:") || strings.Contains(got, "BROWSERD_") {
					t.Errorf("%s from a session's browser: %.300q", u, got)
				}
			}
			// F3: the server's own endpoints (metrics list every project's sessions),
			// other sessions' DevTools, the cloud metadata address.
			api, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{
				srv.URL + "/metrics", srv.URL + "/readyz", "http://localhost:" + api.Port() + "/metrics",
				"http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
			} {
				got := cdpA.pageText(ctx, u)
				if strings.Contains(got, "browserd_") || strings.Contains(got, b.ID) || strings.Contains(got, `"ready"`) {
					t.Errorf("%s from a session's browser: %.300q", u, got)
				}
				if !allow && !strings.Contains(got, "allow-private-networks") && !strings.Contains(got, "ERR_") {
					t.Errorf("%s: no blocked page naming --allow-private-networks: %.300q", u, got)
				}
			}
			// Every port of the server (B's DevTools forwarder among them) is closed to A.
			pageURL, _ := url.Parse(page.URL)
			ports, err := chrome.OwnLoopbackPorts()
			if err != nil {
				t.Fatal(err)
			}
			if len(ports) < 3 {
				t.Fatalf("found loopback listeners %v; want the API, the page and two forwarders", ports)
			}
			for _, port := range ports {
				if port == pageURL.Port() {
					continue
				}
				got := cdpA.pageText(ctx, "http://127.0.0.1:"+port+"/json/list")
				if strings.Contains(got, "webSocketDebuggerUrl") || strings.Contains(got, "devtoolsFrontendUrl") {
					t.Errorf("a session's browser read DevTools on port %s: %.300q", port, got)
				}
			}
			got := cdpA.pageText(ctx, page.URL)
			if allow != strings.Contains(got, "LOOPBACK-PAGE") {
				t.Errorf("loopback page with --allow-private-networks=%v: %.200q", allow, got)
			}
			srv.release(t, testAPIKey, a.ID)
			srv.release(t, testAPIKey, b.ID)
			srv.stop(t)
		})
	}
}
