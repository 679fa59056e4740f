package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// heavyPage mutates its DOM every 50 ms (a table of rows, the oldest dropped), so
// that a session on it leaves a recording that grows all the time it is open.
const heavyPage = `<!doctype html><html><head><title>inspector load</title>
<style>body{font:13px sans-serif} td{padding:1px 6px;border-bottom:1px solid #ddd}</style></head>
<body><h1>Inspector load page</h1><table id="t"></table><script>
let n = 0; const t = document.getElementById('t');
setInterval(() => {
  for (let i = 0; i < 20; i++) {
    const tr = t.insertRow(0); n++;
    tr.insertCell().textContent = 'row ' + n;
    tr.insertCell().textContent = new Date().toISOString();
    tr.insertCell().textContent = 'lorem ipsum dolor sit amet '.repeat(1 + n % 8);
  }
  while (t.rows.length > 200) t.deleteRow(-1);
}, 50);
</script></body></html>`

// getRaw returns the body of an API GET.
func getRaw(t *testing.T, u, key string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-BB-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d, %v", u, resp.StatusCode, err)
	}
	return b
}

// TestInspectorBrowser opens the dashboard's inspector in real Chromium (playwright-core,
// compat/inspector-load.mjs) on a real session with a recording and browser events
// seeded through the store in the pinned shape (issue 19): a failed request shows red
// with its failure reason, the console keeps page text as text, the replay plays and
// the filter narrows the commands. BROWSERD_INSPECTOR_REQUESTS (default 300) and
// BROWSERD_INSPECTOR_SECONDS (how long the page is recorded, default 4) make it the
// large-session measurement of docs/PERFORMANCE.md (5000 and 60). It needs node and
// compat/node_modules (playwright-core); without them it skips.
func TestInspectorBrowser(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "compat", "inspector-load.mjs")
	if _, err := os.Stat(filepath.Join(root, "compat", "node_modules", "playwright-core")); err != nil {
		t.Skip("compat/node_modules has no playwright-core (npm ci in compat/, or link it)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	requests, seconds := envInt("BROWSERD_INSPECTOR_REQUESTS", 300), envInt("BROWSERD_INSPECTOR_SECONDS", 4)
	// No video (--video=false): the inspector must then show none, which inspector.mjs
	// checks; compat/tests/inspector.test.mjs checks the video a default server shows.
	m := startMain(t, "--video=false")
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, heavyPage)
	}))
	t.Cleanup(site.Close)

	var sess apiSession
	callJSON(t, m.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{"keepAlive": true}, http.StatusCreated, &sess)
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(seconds)*time.Second+time.Minute)
	defer cancel()
	c, _, err := dialCDP(ctx, sess.ConnectURL)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.gotoAndTitle(ctx, sid, site.URL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(seconds) * time.Second)
	c.c.CloseNow() // the session is released below
	callJSON(t, m.URL, "POST", "/v1/sessions/"+sess.ID, testAPIKey, map[string]any{"status": "REQUEST_RELEASE"}, http.StatusOK, &sess)
	seedBrowserEvents(t, m.DB, sess.ID, start, requests, time.Duration(seconds)*time.Second)
	rec := getRaw(t, m.URL+"/v1/sessions/"+sess.ID+"/recording", testAPIKey)
	t.Logf("recording: %d bytes of JSON", len(rec))

	shots := filepath.Join(root, "test-artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// The viewer Chromium's profile goes under its own TMPDIR, so that what it leaves
	// (a process, a directory) is found.
	viewerTmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), node, script)
	cmd.Dir = filepath.Join(root, "compat")
	cmd.Env = append(os.Environ(), "TMPDIR="+viewerTmp, "INSPECTOR_BASE="+m.URL, "INSPECTOR_KEY="+testAPIKey, "INSPECTOR_SESSION="+sess.ID,
		"INSPECTOR_SHOTS="+shots, "INSPECTOR_RUNS="+os.Getenv("BROWSERD_INSPECTOR_RUNS"), "INSPECTOR_PREFIX="+fmt.Sprintf("inspector-seeded-%d", requests))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	chrometest.AssertNoLeaks(t, viewerTmp)
	if err != nil {
		t.Fatalf("inspector-load.mjs: %v", err)
	}
}
