package server

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/postgres/pgtest"
)

// clusterNode is one `browserd serve --cluster-url` process of TestCluster.
type clusterNode struct {
	*procServer
	ID     string
	runDir string
}

// startClusterNode runs the binary on a port of its own, known before it starts (its
// --cluster-url names it), on the database at dbURL, with the default cluster timing.
func startClusterNode(t *testing.T, bin, dbURL string, args ...string) *clusterNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	t.Cleanup(func() { assertNoLeaks(t, dir) }) // after startProcess's cleanup, which kills (and reaps on failure)
	p := startProcess(t, bin, dir, append([]string{"--addr", addr, "--database", dbURL, "--cluster-url", "http://" + addr,
		"--pool-size", "0", "--max-sessions", "4", "--metrics-token", pgMetricsToken}, args...)...)
	id, err := os.ReadFile(filepath.Join(dir, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	return &clusterNode{procServer: p, ID: strings.TrimSpace(string(id)), runDir: filepath.Join(dir, "run")}
}

// create starts a keepAlive session on the node itself.
func (n *clusterNode) create(t *testing.T) apiSession {
	t.Helper()
	var s apiSession
	callJSON(t, n.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{"keepAlive": true}, http.StatusCreated, &s)
	return s
}

// nodeState returns a node's state in the database.
func nodeState(t *testing.T, db *postgres.DB, id string) bb.NodeState {
	t.Helper()
	nodes, err := db.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}

// pgSession reads a session straight from the database.
func pgSession(t *testing.T, db *postgres.DB, id string) *bb.Session {
	t.Helper()
	s, err := db.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitExit waits up to d for the process to exit and returns its error (nil: exit 0).
func (n *clusterNode) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-n.exited:
		return n.waitErr
	case <-time.After(d):
		t.Fatalf("node %s still runs after %v", n.ID, d)
		return nil
	}
}

// TestCluster runs three real nodes on one PostgreSQL with real Chromium sessions:
// kill -9 of one ends exactly its sessions ERROR "node lost" within 15 s; one whose link
// to PostgreSQL is cut kills its browsers before a survivor marks it lost, and joins
// again when the link is back; SIGTERM and `admin nodes drain` drain a node (no new
// sessions, the live ones run up to --drain-timeout, then end COMPLETED), mark it left
// and exit 0.
func TestCluster(t *testing.T) {
	t.Parallel()
	chrometest.Chrome(t)
	bin := buildBinary(t)
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	proxy := pgtest.NewProxy(t, dbURL)
	db, err := postgres.Open(t.Context(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	a := startClusterNode(t, bin, dbURL, "--drain-timeout", "5s")
	b := startClusterNode(t, bin, dbURL)
	c := startClusterNode(t, bin, proxy.URL(t, dbURL), "--drain-timeout", "5s")
	sa, sb, sc := a.create(t), b.create(t), c.create(t)
	for _, n := range []*clusterNode{a, b, c} {
		if st := nodeState(t, db, n.ID); st != bb.NodeActive {
			t.Fatalf("node %s is %s; want active", n.ID, st)
		}
	}

	// kill -9 of b: its session ends ERROR "node lost" within 15 s; the others run on.
	if err := b.signal(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("b exited cleanly after SIGKILL")
	}
	killed := time.Now()
	for pgSession(t, db, sb.ID).Status == bb.StatusRunning {
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("b's session still RUNNING 15 s after kill -9 (b is %s)", nodeState(t, db, b.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("kill -9 → session ERROR in %v", time.Since(killed).Round(time.Millisecond))
	if s := pgSession(t, db, sb.ID); s.Status != bb.StatusError || s.EndReason != cluster.ReasonNodeLost {
		t.Errorf("b's session = %s %q; want ERROR %q", s.Status, s.EndReason, cluster.ReasonNodeLost)
	}
	var got apiSession
	callJSON(t, a.URL, "GET", "/v1/sessions/"+sb.ID, testAPIKey, nil, http.StatusOK, &got)
	if got.Status != "ERROR" || got.EndedAt == "" {
		t.Errorf("b's session through a = %s, endedAt %q; want ERROR with endedAt", got.Status, got.EndedAt)
	}
	if st := nodeState(t, db, b.ID); st != bb.NodeLost {
		t.Errorf("b is %s; want lost", st)
	}
	for _, s := range []apiSession{sa, sc} {
		if st := pgSession(t, db, s.ID).Status; st != bb.StatusRunning {
			t.Errorf("a survivor's session is %s; want RUNNING", st)
		}
	}
	reap(t, b.DataDir) // kill -9 left b's browser helpers, as after any crash
	wantMetrics(t, a.URL, `browserd_cluster_nodes{state="active"} 2`, `browserd_cluster_nodes{state="lost"} 1`, "browserd_cluster_member 1")

	// Fencing: c's link to PostgreSQL is cut. Its browser must be gone before its
	// session is ended in the database, and not long before.
	if n := len(browserPIDs(t, c.runDir)); n != 1 {
		t.Fatalf("c runs %d browsers; want 1", n)
	}
	proxy.Cut()
	cut := time.Now()
	var browserGone, ended time.Duration
	for ended == 0 {
		alive := len(browserPIDs(t, c.runDir)) > 0
		s := pgSession(t, db, sc.ID)
		now := time.Since(cut)
		if !alive && browserGone == 0 {
			browserGone = now
		}
		if s.Status.Terminal() {
			ended = now
			if alive {
				t.Errorf("c's session is %s in the database while its browser still runs (%v after the cut)", s.Status, now)
			}
		}
		if now > 30*time.Second {
			t.Fatalf("c's session still %s 30 s after the cut (c is %s, browser alive %v)", s.Status, nodeState(t, db, c.ID), alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("link cut → c's browser gone in %v, its session ended in the database in %v", browserGone.Round(time.Millisecond), ended.Round(time.Millisecond))
	if browserGone == 0 || browserGone > 10*time.Second {
		t.Errorf("c's browser gone %v after the cut; want within the 8 s lease (and its 2 s step)", browserGone)
	}
	if gap := ended - browserGone; gap > 7*time.Second {
		t.Errorf("c's session RUNNING in the database %v after its browser was killed; want under the TTL's margin", gap)
	}
	if s := pgSession(t, db, sc.ID); s.Status != bb.StatusError {
		t.Errorf("c's session = %s %q; want ERROR", s.Status, s.EndReason)
	} else {
		t.Logf("c's session ended %q", s.EndReason)
	}
	if resp, body := rawCall(t, c.URL, "GET", "/readyz", "", ""); resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(body, "fenced") {
		t.Errorf("/readyz of a fenced node = %d %s; want 503, fenced", resp.StatusCode, body)
	}
	wantMetrics(t, c.URL, "browserd_cluster_member 0")
	if st := pgSession(t, db, sa.ID).Status; st != bb.StatusRunning {
		t.Errorf("a's session is %s after c was fenced; want RUNNING", st)
	}

	// The link is back: c joins again and takes sessions.
	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for nodeState(t, db, c.ID) != bb.NodeActive {
		if time.Now().After(deadline) {
			t.Fatalf("c is %s 30 s after its link came back; want active", nodeState(t, db, c.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, _ := call(t, c.URL, "GET", "/readyz", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of c = %d 30 s after it joined again", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sc2 := c.create(t)

	// SIGTERM drains a: creates get 503, its session runs on until --drain-timeout
	// (5 s), then ends COMPLETED; a is left and exits 0.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termed := time.Now()
	waitNotReady(t, a.URL, 5*time.Second) // a create sent before the drain began may still be served
	if code, body := call(t, a.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{}); code != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "draining") {
		t.Errorf("create on a draining node = %d %s; want 503 draining", code, body)
	}
	if st := nodeState(t, db, a.ID); st != bb.NodeDraining {
		t.Errorf("a is %s while draining; want draining", st)
	}
	if st := pgSession(t, db, sa.ID).Status; st != bb.StatusRunning {
		t.Errorf("a's session is %s during the drain; want RUNNING", st)
	}
	if err := a.waitExit(t, 40*time.Second); err != nil {
		t.Errorf("a after SIGTERM: %v; want exit 0", err)
	}
	if d := time.Since(termed); d < 5*time.Second {
		t.Errorf("a exited %v after SIGTERM; want after the 5 s drain timeout", d)
	}
	if s := pgSession(t, db, sa.ID); s.Status != bb.StatusCompleted {
		t.Errorf("a's session after the drain = %s %q; want COMPLETED", s.Status, s.EndReason)
	}
	if st := nodeState(t, db, a.ID); st != bb.NodeLeft {
		t.Errorf("a is %s after it drained; want left", st)
	}

	// `admin nodes drain c`: c reads it at its next heartbeat and drains the same way;
	// a session released meanwhile lets it go before the timeout.
	out, err := exec.Command(bin, "admin", "nodes", "drain", c.ID, "--database", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("admin nodes drain: %v\n%s", err, out)
	}
	drained := time.Now()
	waitNotReady(t, c.URL, 10*time.Second) // at c's next heartbeat
	if code, body := call(t, c.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{}); code != http.StatusServiceUnavailable {
		t.Errorf("create on c after admin nodes drain = %d %s; want 503", code, body)
	}
	callJSON(t, c.URL, "POST", "/v1/sessions/"+sc2.ID, testAPIKey, map[string]any{"status": "REQUEST_RELEASE", "projectId": sc2.ProjectID}, http.StatusOK, nil)
	if err := c.waitExit(t, 30*time.Second); err != nil {
		t.Errorf("c after admin nodes drain: %v; want exit 0", err)
	}
	t.Logf("admin nodes drain → exit in %v", time.Since(drained).Round(time.Millisecond))
	if s := pgSession(t, db, sc2.ID); s.Status != bb.StatusCompleted {
		t.Errorf("c's session = %s; want COMPLETED", s.Status)
	}
	out, err = exec.Command(bin, "admin", "nodes", "list", "--database", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("admin nodes list: %v\n%s", err, out)
	}
	t.Logf("admin nodes list:\n%s", out)
	for _, want := range []struct {
		n     *clusterNode
		state bb.NodeState
	}{{a, bb.NodeLeft}, {b, bb.NodeLost}, {c, bb.NodeLeft}} {
		if !strings.Contains(string(out), want.n.ID) || nodeState(t, db, want.n.ID) != want.state {
			t.Errorf("node %s: %s in the database; want %s and listed", want.n.ID, nodeState(t, db, want.n.ID), want.state)
		}
	}
}

// waitNotReady waits until the server's /readyz answers 503.
func waitNotReady(t *testing.T, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, _ := call(t, base, "GET", "/readyz", "", nil)
		if code == http.StatusServiceUnavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of %s = %d after %v; want 503", base, code, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantMetrics checks that the server's /metrics has each line of want within 5 s
// (a node reads its peers at each heartbeat).
func wantMetrics(t *testing.T, base string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := missingMetrics(t, base, want)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics of %s lacks %q", base, missing)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// missingMetrics returns the lines of want that the server's /metrics lacks.
func missingMetrics(t *testing.T, base string, want []string) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pgMetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, w := range want {
		if !strings.Contains(string(b), "\n"+w+"\n") {
			missing = append(missing, w)
		}
	}
	return missing
}
