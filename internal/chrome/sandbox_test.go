package chrome_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// page attaches to b's first page and returns a function that evaluates an expression
// there (awaiting promises) and returns its value as a string.
func page(t *testing.T, b bb.Browser) (c *cdp.Conn, session string) {
	t.Helper()
	c = dialCDP(t, b.DevToolsURL())
	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	if err := c.Call(ctx, "", "Target.getTargets", nil, &targets); err != nil {
		t.Fatal(err)
	}
	for _, ti := range targets.TargetInfos {
		if ti.Type != "page" {
			continue
		}
		var attached struct {
			SessionID string `json:"sessionId"`
		}
		if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &attached); err != nil {
			t.Fatal(err)
		}
		return c, attached.SessionID
	}
	t.Fatal("no page")
	return nil, ""
}

// eval evaluates expr in the page and returns its string value.
func eval(t *testing.T, c *cdp.Conn, session, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	params := map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}
	if err := c.Call(ctx, session, "Runtime.evaluate", params, &res); err != nil {
		t.Fatal(err)
	}
	s, _ := res.Result.Value.(string)
	return s
}

// navigate loads url in the page and returns the text of what it shows.
func navigate(t *testing.T, c *cdp.Conn, session, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	if err := c.Call(ctx, session, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		return "navigate error: " + err.Error()
	}
	time.Sleep(300 * time.Millisecond) // file:// and error pages commit at once
	return eval(t, c, session, "document.documentElement ? document.documentElement.innerText : ''")
}

// TestSandboxConfinement reproduces findings F1, F3, F9 and F11 of the security review
// against a real browser: with its whole CDP, a client can read no file of the server's,
// reach no network but its egress, see no process of the server, and the browser runs
// with Chromium's own sandbox on, as a uid of its own when the server is root, with a
// minimal environment.
func TestSandboxConfinement(t *testing.T) {
	// Stand-ins for the server's secrets: a file beside the run dir, like browserd.db.
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "browserd.db")
	if err := os.WriteFile(secret, []byte("SIGNING-SECRET-0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSERD_API_KEY", "server-api-key-must-not-leak")
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		w.Write([]byte("SERVER-LOOPBACK-PAGE"))
	}))
	defer srv.Close()

	l := chrometest.RealLauncher(t)
	a := launchReady(t, l, bb.LaunchOptions{SessionID: "a"})
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "b"})
	c, s := page(t, a)

	t.Run("files", func(t *testing.T) {
		for _, u := range []string{"file://" + secret, "file://" + secretDir + "/", "file:///etc/shadow", "file:///etc/passwd",
			"file://" + filepath.Join(b.Dir(), "profile") + "/", "file:///proc/" + strconv.Itoa(os.Getpid()) + "/environ"} {
			if got := navigate(t, c, s, u); strings.Contains(got, "SIGNING-SECRET") || strings.Contains(got, "browserd.db") ||
				strings.Contains(got, "root:") || strings.Contains(got, "Default") || strings.Contains(got, "BROWSERD_") {
				t.Errorf("%s shows the server's files: %.200q", u, got)
			}
		}
		// DOM.setFileInputFiles with the server's file, then read it in the page.
		navigate(t, c, s, "about:blank")
		eval(t, c, s, `(() => { document.body.innerHTML = '<input type=file id=f>'; return '' })()`)
		ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
		defer cancel()
		var doc struct {
			Root struct {
				NodeID int `json:"nodeId"`
			} `json:"root"`
		}
		if err := c.Call(ctx, s, "DOM.getDocument", nil, &doc); err != nil {
			t.Fatal(err)
		}
		var q struct {
			NodeID int `json:"nodeId"`
		}
		if err := c.Call(ctx, s, "DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": "#f"}, &q); err != nil {
			t.Fatal(err)
		}
		_ = c.Call(ctx, s, "DOM.setFileInputFiles", map[string]any{"nodeId": q.NodeID, "files": []string{secret}}, nil) // may fail; reading is what matters
		got := eval(t, c, s, `new Promise(r => { const f = document.getElementById('f').files[0];
			if (!f) return r('no file'); const fr = new FileReader(); fr.onload = () => r(String(fr.result));
			fr.onerror = () => r('read error'); fr.readAsText(f) })`)
		if strings.Contains(got, "SIGNING-SECRET") {
			t.Errorf("DOM.setFileInputFiles read the server's file: %q", got)
		}
	})

	t.Run("network", func(t *testing.T) {
		// The namespace leads nowhere, yet pages must not see the browser offline.
		navigate(t, c, s, "about:blank")
		if got := eval(t, c, s, "String(navigator.onLine)"); got != "true" {
			t.Errorf("navigator.onLine = %s; want true", got)
		}
		// No egress yet: nothing leaves the browser, loopback included.
		other, err := url.Parse(b.DevToolsURL()) // b's forwarder: the F3 path to another tenant
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{srv.URL + "/direct", "http://" + other.Host + "/json/list"} {
			if got := navigate(t, c, s, u); strings.Contains(got, "SERVER-LOOPBACK-PAGE") || strings.Contains(got, "webSocketDebuggerUrl") {
				t.Errorf("%s reached from the browser: %.200q", u, got)
			}
		}
		if _, ok := hits.Load("/direct"); ok {
			t.Error("the browser reached a loopback server of the host")
		}
	})

	t.Run("egress", func(t *testing.T) {
		// With an egress, every connection goes there, even to 127.0.0.1 and to the
		// browser's own DevTools port: the proxy alone decides.
		conns := make(chan string, 16)
		a.SetEgress(func(conn net.Conn) {
			go func() {
				defer conn.Close()
				line, _ := bufio.NewReader(conn).ReadString('\n')
				conns <- strings.TrimSpace(line)
				conn.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused"))
			}()
		})
		for _, u := range []string{"http://example.test/x", "http://127.0.0.1:9222/json/list", srv.URL + "/via-egress"} {
			navigate(t, c, s, u)
			want := "GET " + u + " "
			for found := false; !found; {
				select {
				case got := <-conns:
					found = strings.HasPrefix(got, want) // others: favicons
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: the request did not reach the egress", u)
				}
			}
		}
		if _, ok := hits.Load("/via-egress"); ok {
			t.Error("a request reached the host's loopback server around the egress")
		}
		a.SetEgress(nil)
	})

	t.Run("processes", func(t *testing.T) {
		main := chromiumMain(t, a)
		status, err := os.ReadFile("/proc/" + strconv.Itoa(main) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		uid := statusField(string(status), "Uid:")
		if os.Geteuid() == 0 && (uid == "0" || uid == "") {
			t.Errorf("Chromium runs as uid %q; want a uid of its own", uid)
		}
		if uidB := statusField(readFile(t, "/proc/"+strconv.Itoa(chromiumMain(t, b))+"/status"), "Uid:"); os.Geteuid() == 0 && uidB == uid {
			t.Errorf("two browsers share uid %s", uid)
		}
		env := strings.Split(readFile(t, "/proc/"+strconv.Itoa(main)+"/environ"), "\x00")
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if kv != "" && !slices.Contains([]string{"PATH", "HOME", "TMPDIR", "XDG_CONFIG_HOME", "LANG", "LANGUAGE", "LC_ALL", "TZ", "PWD"}, k) {
				t.Errorf("Chromium's environment has %s", k)
			}
		}
		if cmd := readFile(t, "/proc/"+strconv.Itoa(main)+"/cmdline"); strings.Contains(cmd, "--no-sandbox") {
			t.Errorf("Chromium runs with --no-sandbox: %s", cmd)
		}
		// Chromium's own sandbox: renderers in a user namespace of their own, under seccomp.
		self, _ := os.Readlink("/proc/self/ns/net")
		if ns, _ := os.Readlink("/proc/" + strconv.Itoa(main) + "/ns/net"); ns == self || ns == "" {
			t.Errorf("Chromium shares the server's network namespace (%s)", ns)
		}
		mainUserNS, _ := os.Readlink("/proc/" + strconv.Itoa(main) + "/ns/user")
		renderers := 0
		for _, pid := range group(t, a.PID()) {
			cmd := readFile(t, "/proc/"+strconv.Itoa(pid)+"/cmdline")
			if !strings.Contains(cmd, "--type=renderer") {
				continue
			}
			renderers++
			st := readFile(t, "/proc/"+strconv.Itoa(pid)+"/status")
			if statusField(st, "Seccomp:") != "2" {
				t.Errorf("renderer %d: Seccomp %q; want 2 (filter)", pid, statusField(st, "Seccomp:"))
			}
			if ns, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/user"); ns == mainUserNS {
				t.Errorf("renderer %d shares the browser's user namespace: Chromium's sandbox is off", pid)
			}
		}
		if renderers == 0 {
			t.Error("no renderer process found")
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// statusField returns the first value of a /proc/<pid>/status line.
func statusField(status, key string) string {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}
