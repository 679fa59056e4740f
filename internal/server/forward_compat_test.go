package server

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/s3blob/s3test"
)

// TestForwardCompat runs the npm compat suite (the official SDK, playwright-core,
// puppeteer-core) against two nodes on one PostgreSQL and one S3, behind a load balancer
// that sends every request, websocket upgrades included, to a random node: issue 18's
// "any node answers anything". BROWSERD_FORWARD_COMPAT=1 runs it (it takes minutes);
// BROWSERD_FORWARD_COMPAT_TESTS picks files (e.g. "tests/playwright.test.mjs").
//
// Known failures today (2026-12-05), none of them in forwarding: fetch.test.mjs's
// refusal of "the server's own port" (the suite's base URL is the load balancer here,
// not a node's port); selenium's two "quickstart" tests count chromedrivers by a parent
// process whose command line holds a server's port, which an in-process node behind a
// load balancer does not have. internal/compatprod TestCompatCluster runs the whole
// suite, passing, against one node of three real processes.
func TestForwardCompat(t *testing.T) {
	if os.Getenv("BROWSERD_FORWARD_COMPAT") == "" {
		t.Skip("BROWSERD_FORWARD_COMPAT=1 runs the npm compat suite against a two-node cluster behind a random load balancer")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "compat", "node_modules")); err != nil {
		t.Fatalf("compat/node_modules: %v (link /work/main/compat/node_modules there)", err)
	}
	s3 := s3test.Start(t)
	env := defaultEnv()
	for k, v := range s3.Env() {
		env[k] = v
	}
	// The flags compat/run.sh gives its server (the receiver of the webhook tests is on
	// loopback).
	nodes := startFwdClusterEnv(t, 2, env, "--blob-store", s3.URL("cluster"),
		"--webhook-allow-http", "--webhook-allow-private-networks", "--webhook-retry-min", "200ms")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()

	// The suite's second project, of concurrency 1 (its 429 test), as compat/run.sh makes it.
	db := nodes[0].Main.DB
	now := time.Now().UTC().Truncate(time.Millisecond)
	limited := &bb.Project{ID: bb.NewID(), Name: "limited", OwnerID: nodes[0].Main.Project.OwnerID, DefaultTimeout: bb.DefaultProjectTimeout,
		Concurrency: 1, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProject(ctx, limited); err != nil {
		t.Fatal(err)
	}
	limitedKey, err := createKey(ctx, db, limited.ID, "limited", "")
	if err != nil {
		t.Fatal(err)
	}

	// The load balancer: each request (each websocket) to a random node, Host kept.
	var targets []*url.URL
	for _, n := range nodes {
		u, _ := url.Parse(n.URL)
		targets = append(targets, u)
	}
	lb := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[rand.IntN(len(targets))])
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	})
	t.Cleanup(lb.Close)

	files := os.Getenv("BROWSERD_FORWARD_COMPAT_TESTS") // e.g. tests/playwright.test.mjs
	if files == "" {
		files = "tests/*.test.mjs"
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", `node --test --test-concurrency=1 --test-reporter=spec `+files)
	cmd.Dir = filepath.Join(root, "compat")
	cmd.Env = append(os.Environ(),
		"BROWSERBASE_BASE_URL="+lb.URL, "BROWSERBASE_API_KEY="+testAPIKey, "BROWSERBASE_PROJECT_ID="+nodes[0].Main.Project.ID,
		"LIMITED_API_KEY="+limitedKey, "LIMITED_PROJECT_ID="+limited.ID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compat suite behind a random load balancer over two nodes: %v\n%s", err, out)
	}
	var per = map[string]int{}
	ss, err := db.Sessions(ctx, bb.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		per[s.NodeID]++
	}
	t.Logf("compat suite passed over two nodes; sessions per node %v\n%s", per, tail(out, 1500))
	if len(per) < 2 {
		t.Errorf("every session ran on one node (%v): placement did not spread them", per)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
