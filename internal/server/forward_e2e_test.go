package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/postgres/pgtest"
	"github.com/browserd/browserd/internal/webdriver"
)

// fwdNode is one node of a test cluster, in this process.
type fwdNode struct {
	*testServer
	ID   string
	Host string // 127.0.0.1:port
	Main *Main
}

// startFwdNode starts a node of the cluster on database pgURL with the environment env.
func startFwdNode(t *testing.T, pgURL string, env map[string]string, args ...string) *fwdNode {
	t.Helper()
	chrometest.Chrome(t)
	dataDir := t.TempDir()
	searchable(t, dataDir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close() // the node listens on it again: a free port, known before it starts
	m := NewMain("test")
	m.Stdout, m.Stderr = io.Discard, t.Output()
	argv := append([]string{"--addr", host, "--data-dir", dataDir, "--pool-size", "0", "--allow-private-networks",
		"--database", pgURL, "--cluster-url", "http://" + host}, args...)
	if err := m.ParseFlags(argv, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
		chrometest.AssertNoLeaks(t, filepath.Join(dataDir, "run"))
	})
	id, err := os.ReadFile(filepath.Join(dataDir, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	return &fwdNode{testServer: &testServer{URL: m.URL, DataDir: dataDir, stdout: newOutput(nil)}, ID: strings.TrimSpace(string(id)), Host: host, Main: m}
}

// heartbeatEvery is how often a node renews its membership and reads the others' (the
// default of the membership loop).
const heartbeatEvery = 2 * time.Second

// startFwdCluster starts n nodes on one fresh PostgreSQL database and waits until each
// sees the others.
func startFwdCluster(t *testing.T, n int, args ...string) []*fwdNode {
	t.Helper()
	return startFwdClusterEnv(t, n, defaultEnv(), args...)
}

// startFwdClusterEnv is startFwdCluster with the nodes' environment env.
func startFwdClusterEnv(t *testing.T, n int, env map[string]string, args ...string) []*fwdNode {
	t.Helper()
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	var out []*fwdNode
	for range n {
		out = append(out, startFwdNode(t, url, env, args...))
	}
	poll(t, "the nodes to see each other", func() bool {
		ns, _ := out[0].Main.DB.(bb.NodeStore).Nodes(t.Context())
		return len(ns) == n
	})
	time.Sleep(2*heartbeatEvery + 500*time.Millisecond) // every node has read every other
	return out
}

// ownerOf returns the node that runs session id, from the store.
func ownerOf(t *testing.T, nodes []*fwdNode, id string) *fwdNode {
	t.Helper()
	s, err := nodes[0].Main.DB.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == s.NodeID {
			return n
		}
	}
	t.Fatalf("session %s is on node %q, not one of the test's", id, s.NodeID)
	return nil
}

// hopRequest sends GET path to base with hop as its X-Browserd-Hop header and the
// default project's API key.
func hopRequest(t *testing.T, base, path, hop string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(cluster.HopHeader, hop)
	req.Header.Set("X-BB-API-Key", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestForwardE2E runs two nodes on one PostgreSQL with real Chromium: a session
// created on A is used entirely through B (the API, uploads, the connectUrl over CDP,
// downloads, logs, the live view's DevTools websocket and screencast, WebDriver,
// release), as behind a load balancer; forged, expired and API-key hop headers are
// refused; a rotated cluster secret keeps the nodes talking.
func TestForwardE2E(t *testing.T) {
	t.Parallel()
	nodes := startFwdCluster(t, 2, "--upload-max-size", "1")
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	site := artifactSite(t)

	sess := a.create(t, testAPIKey, map[string]any{"keepAlive": true})
	if o := ownerOf(t, nodes, sess.ID); o != a {
		t.Fatalf("created on A (a tie), placed on %s", o.ID)
	}
	base := "/v1/sessions/" + sess.ID
	var got apiSession
	callJSON(t, b.URL, "GET", base, testAPIKey, nil, http.StatusOK, &got)
	if got.ID != sess.ID || got.Status != "RUNNING" || !strings.Contains(got.ConnectURL, b.Host) {
		t.Fatalf("GET via B = %+v; want RUNNING with a connectUrl on B's host %s", got, b.Host)
	}
	if code, body := upload(t, b.URL, testAPIKey, sess.ID, "hello.txt", "hello via B"); code != 200 {
		t.Fatalf("upload via B = %d %s", code, body)
	}

	// The connectUrl through B: CDP over B's websocket to A's browser.
	cdp := mustDial(t, ctx, got.ConnectURL)
	sid := openArtifactPage(t, ctx, cdp, site, "allow", "downloads")
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": fmt.Sprintf(`location.href = %q; 1`, site.URL+"/file"), "returnByValue": true}, &res); err != nil {
		t.Fatal(err)
	}
	poll(t, "the download in the zip via B", func() bool {
		code, body := call(t, b.URL, "GET", base+"/downloads", testAPIKey, nil)
		if code != 200 {
			t.Fatalf("downloads via B = %d %s", code, body)
		}
		for name, content := range zipFiles(t, body) {
			if downloadName.MatchString(name) && content == "the report" {
				return true
			}
		}
		return false
	})
	var logs []struct {
		Method string `json:"method"`
	}
	callJSON(t, b.URL, "GET", base+"/logs", testAPIKey, nil, http.StatusOK, &logs)
	if !strings.Contains(fmt.Sprint(logs), "Page.navigate") {
		t.Errorf("logs via B lack Page.navigate: %v", logs)
	}

	// The live view via B: DevTools' websocket and the screencast.
	var live struct {
		WSURL                 string `json:"wsUrl"`
		DebuggerFullscreenURL string `json:"debuggerFullscreenUrl"`
	}
	callJSON(t, b.URL, "GET", base+"/debug", testAPIKey, nil, http.StatusOK, &live)
	if !strings.Contains(live.WSURL, b.Host) {
		t.Fatalf("wsUrl via B = %s; want B's host", live.WSURL)
	}
	lv := mustDial(t, ctx, live.WSURL)
	if v, err := lv.version(ctx); err != nil || v == "" {
		t.Errorf("Browser.getVersion over the live view's DevTools via B = %q, %v", v, err)
	}
	view := live.DebuggerFullscreenURL
	if code, page := call(t, b.URL, "GET", view[strings.Index(view, "/debug/"):], "", nil); code != 200 || !strings.Contains(string(page), "<html") {
		t.Errorf("live view page via B = %d", code)
	}
	token := strings.Split(view[strings.Index(view, "/debug/")+len("/debug/"):], "/")[0]
	sc, _, err := websocket.Dial(ctx, "ws://"+b.Host+"/debug/"+token+"/screencast", nil)
	if err != nil {
		t.Fatalf("screencast via B: %v", err)
	}
	sc.SetReadLimit(16 << 20)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	if _, msg, err := sc.Read(rctx); err != nil || len(msg) == 0 {
		t.Errorf("screencast via B: no frame: %v", err)
	}
	rcancel()
	sc.Close(websocket.StatusNormalClosure, "")

	// WebDriver via B.
	if _, err := webdriver.FindChromedriver(""); err == nil {
		wd := webDriver(t, ctx, b.URL, sess.SigningKey) // via B
		wdBase := "/session/" + newWebDriverSession(t, wd)
		if code, body := wd("POST", wdBase+"/url", `{"url":`+quoteJSON(site.URL+"/")+`}`); code != 200 {
			t.Errorf("WebDriver navigate via B = %d %s", code, body)
		}
		if code, body := wd("GET", wdBase+"/title", ""); code != 200 || !strings.Contains(body, "artifacts") {
			t.Errorf("WebDriver title via B = %d %s", code, body)
		}
		// No DELETE: quitting the WebDriver session would end the browserd session.
	} else {
		t.Log("no chromedriver: WebDriver not checked:", err)
	}

	// Hop headers a client makes up are refused, with the API's error shape.
	keys, err := cluster.NewKeyring(ctx, a.Main.DB)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("A", 43)
	for name, hop := range map[string]string{
		"API key": testAPIKey,
		"forged":  b.ID + "." + fmt.Sprint(time.Now().Unix()) + "." + other,
		// A valid MAC over a time two minutes ago, as a peer would have made it then.
		"expired":    keys.SignAt(b.ID, "GET", base, time.Now().Add(-2*time.Minute)),
		"other path": keys.Sign(b.ID, "GET", "/v1/projects"),
	} {
		code, body := hopRequest(t, a.URL, base, hop)
		if code != http.StatusUnauthorized || !strings.Contains(body, `"statusCode":401`) || !strings.Contains(body, cluster.HopHeader) {
			t.Errorf("%s hop at A = %d %s; want 401 in the error shape", name, code, body)
		}
	}
	// A genuine hop is served where it lands, even by a node that does not own the
	// session (never forwarded again).
	if code, body := hopRequest(t, b.URL, base, keys.Sign(a.ID, "GET", base)); code != http.StatusOK {
		t.Errorf("genuine hop at B = %d %s; want 200 from B itself", code, body)
	}

	// Rotate the secret: forwarding goes on, right away and once every node re-read it.
	var out, errOut strings.Builder
	if err := Admin(ctx, []string{"cluster", "rotate-secret", "--database", a.Main.Config.Database}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("admin cluster rotate-secret: %v\n%s", err, errOut.String())
	}
	callJSON(t, b.URL, "GET", base, testAPIKey, nil, http.StatusOK, &got)
	time.Sleep(cluster.RefreshInterval + time.Second)
	callJSON(t, b.URL, "GET", base, testAPIKey, nil, http.StatusOK, &got)
	if code, _ := hopRequest(t, a.URL, base, keys.Sign(b.ID, "GET", base)); code != http.StatusOK {
		t.Errorf("a hop under the previous secret right after the rotation = %d; want 200 (its minute of grace)", code)
	}

	// Release via B; the ended session's logs stay readable via B.
	callJSON(t, b.URL, "POST", base, testAPIKey, map[string]any{"status": "REQUEST_RELEASE"}, http.StatusOK, &got)
	b.waitStatus(t, testAPIKey, sess.ID, "COMPLETED", 30*time.Second)
	callJSON(t, b.URL, "GET", base+"/logs", testAPIKey, nil, http.StatusOK, &logs)
	if len(logs) == 0 {
		t.Error("no logs via B after the session ended")
	}
}

// TestPlacementE2E: creates spread over two nodes never admit more than the
// project's concurrency, nor more than a node's --max-sessions on any node, and are
// refused with the single node's 429; a create goes to the less loaded node.
func TestPlacementE2E(t *testing.T) {
	t.Parallel()
	nodes := startFwdCluster(t, 2, "--max-sessions", "2")
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	setConcurrency := func(n int) {
		t.Helper()
		if _, err := a.Main.DB.UpdateProject(ctx, a.Main.Project.ID, func(p *bb.Project) error {
			p.Concurrency = n
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		code int
		body string
		id   string
	}
	burst := func(n int) []result {
		t.Helper()
		out := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				code, body := call(t, nodes[i%2].URL, "POST", "/v1/sessions", testAPIKey, map[string]any{"keepAlive": true})
				var s apiSession
				json.Unmarshal(body, &s)
				out[i] = result{code, string(body), s.ID}
			})
		}
		wg.Wait()
		return out
	}
	perNode := func() map[string]int {
		t.Helper()
		ss, err := a.Main.DB.Sessions(ctx, bb.SessionFilter{LiveOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, s := range ss {
			m[s.NodeID]++
		}
		return m
	}
	var ids []string
	count := func(rs []result, what string, created, refused int) {
		t.Helper()
		c, r := 0, 0
		for _, x := range rs {
			switch x.code {
			case http.StatusCreated:
				c++
				ids = append(ids, x.id)
			case http.StatusTooManyRequests:
				r++
			default:
				t.Errorf("%s: create = %d %s", what, x.code, x.body)
			}
		}
		if c != created || r != refused {
			t.Errorf("%s: %d created, %d refused with 429; want %d and %d", what, c, r, created, refused)
		}
	}

	// Project concurrency 3, capacity 2+2: a burst of 6 admits exactly 3, on both nodes.
	setConcurrency(3)
	count(burst(6), "project limit", 3, 3)
	pn := perNode()
	if pn[a.ID]+pn[b.ID] != 3 || pn[a.ID] > 2 || pn[b.ID] > 2 || pn[a.ID] == 0 || pn[b.ID] == 0 {
		t.Errorf("live sessions per node %v; want 3 over both, at most 2 each", pn)
	}
	// Concurrency 10: one node slot is left; a burst of 3 gets it once.
	setConcurrency(10)
	rs := burst(3)
	count(rs, "node capacity", 1, 2)
	for _, x := range rs {
		if x.code == http.StatusTooManyRequests && !strings.Contains(x.body, "at capacity") {
			t.Errorf("every node full: %s; want the node's at-capacity 429", x.body)
		}
	}
	if pn := perNode(); pn[a.ID] != 2 || pn[b.ID] != 2 {
		t.Errorf("live sessions per node %v; want 2 and 2", pn)
	}
	for _, id := range ids {
		callJSON(t, b.URL, "POST", "/v1/sessions/"+id, testAPIKey, map[string]any{"status": "REQUEST_RELEASE"}, http.StatusOK, nil)
		b.waitStatus(t, testAPIKey, id, "COMPLETED", 30*time.Second)
	}

	// Least loaded: the first create at A stays on A (a tie, A wins); once A's heartbeat
	// says it runs one, A's next create goes to B.
	seen := func(n *fwdNode, live int) func() bool {
		return func() bool {
			ns, _ := a.Main.DB.(bb.NodeStore).Nodes(ctx)
			for _, x := range ns {
				if x.ID == n.ID {
					return x.Live == live
				}
			}
			return false
		}
	}
	poll(t, "A's heartbeat with no session", seen(a, 0))
	poll(t, "B's heartbeat with no session", seen(b, 0))
	time.Sleep(heartbeatEvery + 500*time.Millisecond)
	first := a.create(t, testAPIKey, map[string]any{"keepAlive": true})
	if o := ownerOf(t, nodes, first.ID); o != a {
		t.Errorf("first create at A (a tie) placed on %s; want A", o.ID)
	}
	poll(t, "A's heartbeat with its session", seen(a, 1))
	time.Sleep(heartbeatEvery + 500*time.Millisecond) // A has read B's load, and its own
	second := a.create(t, testAPIKey, map[string]any{"keepAlive": true})
	if o := ownerOf(t, nodes, second.ID); o != b {
		t.Errorf("second create at A placed on %s; want B, the less loaded", o.ID)
	}
	for _, s := range []apiSession{first, second} {
		a.release(t, testAPIKey, s.ID)
	}
}

// TestAuthLimitCountsHopClient: the failed-authentication limit counts a forwarded
// request's failures under the client that X-Forwarded-For names when, and only when,
// its hop header verified; a client's own X-Forwarded-For counts for nothing.
func TestAuthLimitCountsHopClient(t *testing.T) {
	l := newAuthLimiter(1, time.Minute, nil, slog.New(slog.DiscardHandler))
	l.hop = func(r *http.Request) bool { return r.Header.Get(cluster.HopHeader) == "verified" }
	for _, c := range []struct {
		hop, xff, want string
	}{
		{"verified", "203.0.113.9", "203.0.113.9"},
		{"verified", "198.51.100.1, 203.0.113.9", "203.0.113.9"}, // the peer appended the last
		{"forged", "203.0.113.9", "10.0.0.2"},
		{"", "203.0.113.9", "10.0.0.2"},
	} {
		r := httptest.NewRequest("GET", "/v1/sessions", nil)
		r.RemoteAddr = "10.0.0.2:4321"
		r.Header.Set("X-Forwarded-For", c.xff)
		if c.hop != "" {
			r.Header.Set(cluster.HopHeader, c.hop)
		}
		if got := l.clientKey(r); got != c.want {
			t.Errorf("hop %q, X-Forwarded-For %q: counted as %s; want %s", c.hop, c.xff, got, c.want)
		}
	}
}

// TestAdminClusterUsage: rotate-secret needs the cluster's PostgreSQL; other words are
// usage errors.
func TestAdminClusterUsage(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BROWSERD_DATA_DIR": dir}
	for _, args := range [][]string{
		{"cluster", "rotate-secret"}, // SQLite
		{"cluster", "rotate-secret", "--database", filepath.Join(dir, "x.db")},
		{"cluster", "nope"},
		{"cluster"},
	} {
		var out, errOut strings.Builder
		err := Admin(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("admin %v = %v; want a usage error", args, err)
		}
	}
}
