package cluster_test

import (
	"context"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/cluster"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/postgres/pgtest"
)

// The members' timing in these tests: the defaults' proportions, ten times faster.
const (
	heartbeat = 200 * time.Millisecond
	lease     = 1600 * time.Millisecond
	ttl       = 2 * time.Second
)

// node is one member on real PostgreSQL: its own connection pool, a Manager with
// fake browsers, and its Member running in the background.
type node struct {
	id     string
	db     *postgres.DB
	l      *chrometest.Launcher
	m      *bb.Manager
	member *cluster.Member
}

// startNode starts a member on the database at url with a project's sessions.
func startNode(t *testing.T, id, url string) *node {
	t.Helper()
	db, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	l := &chrometest.Launcher{}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, NodeID: id, MaxSessions: 8, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := l.Live(); n != 0 {
			t.Errorf("node %s: %d browsers still running after Close", id, n)
		}
	})
	mem, err := cluster.New(cluster.Config{Store: db, Local: m, ID: id, URL: "http://" + id + ".test:8080",
		Capacity: 8, Heartbeat: heartbeat, Lease: lease, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mem.Stop)
	return &node{id: id, db: db, l: l, m: m, member: mem}
}

// create starts a keepAlive session on the node.
func (n *node) create(t *testing.T, projectID string) *bb.Session {
	t.Helper()
	s, err := n.m.CreateSession(t.Context(), projectID, bb.CreateSessionRequest{KeepAlive: true})
	if err != nil {
		t.Fatalf("create on %s: %v", n.id, err)
	}
	return s
}

// state returns a node's state in the store.
func state(t *testing.T, db *postgres.DB, id string) bb.NodeState {
	t.Helper()
	nodes, err := db.Nodes(context.Background())
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

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func newProject(t *testing.T, db *postgres.DB) *bb.Project {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := &bb.Project{ID: bb.NewID(), Name: "p", DefaultTimeout: 3600, Concurrency: 100, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPostgresNodeLost: on real PostgreSQL, a node that stops renewing (as after
// kill -9) is marked lost once, after the TTL, and exactly its live sessions end
// ERROR "node lost"; the others' sessions run on.
func TestPostgresNodeLost(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	a, b, c := startNode(t, "a", url), startNode(t, "b", url), startNode(t, "c", url)
	p := newProject(t, a.db)
	sa, sb := a.create(t, p.ID), b.create(t, p.ID)
	sc := []*bb.Session{c.create(t, p.ID), c.create(t, p.ID)}
	time.Sleep(2 * heartbeat)
	if live, _ := c.m.Load(); live != 2 {
		t.Fatalf("c's load = %d; want 2", live)
	}

	c.member.Stop() // c is gone: no more heartbeats, its browsers are of no concern here
	stopped := time.Now()
	if !waitFor(ttl+5*heartbeat+2*time.Second, func() bool { return state(t, a.db, "c") == bb.NodeLost }) {
		t.Fatalf("c is %s %v after it stopped; want lost", state(t, a.db, "c"), time.Since(stopped))
	}
	if d := time.Since(stopped); d < ttl-heartbeat {
		t.Errorf("c marked lost %v after its last heartbeat; the TTL is %v", d, ttl)
	}
	for _, s := range sc {
		if !waitFor(2*time.Second, func() bool {
			got, err := a.db.Session(t.Context(), s.ID)
			return err == nil && got.Status == bb.StatusError && got.EndReason == cluster.ReasonNodeLost
		}) {
			got, _ := a.db.Session(t.Context(), s.ID)
			t.Errorf("c's session = %s %q; want ERROR %q", got.Status, got.EndReason, cluster.ReasonNodeLost)
		}
	}
	for _, s := range []*bb.Session{sa, sb} {
		if got, err := a.db.Session(t.Context(), s.ID); err != nil || got.Status != bb.StatusRunning {
			t.Errorf("survivor's session %s = %v, %v; want RUNNING", s.ID, got.Status, err)
		}
	}
	for _, n := range []*node{a, b} {
		if !n.member.Placeable() || state(t, a.db, n.id) != bb.NodeActive {
			t.Errorf("survivor %s: placeable %v, state %s", n.id, n.member.Placeable(), state(t, a.db, n.id))
		}
	}
	if peers := a.member.Peers(); len(peers) != 3 {
		t.Errorf("a's peers = %d; want 3", len(peers))
	}
}

// TestPostgresFence: a node whose link to PostgreSQL is cut kills its browsers within
// its lease, before a survivor marks it lost; when the link is back it joins again and
// takes sessions.
func TestPostgresFence(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	proxy := pgtest.NewProxy(t, url)
	a := startNode(t, "a", proxy.URL(t, url))
	b := startNode(t, "b", url)
	p := newProject(t, b.db)
	sa := []*bb.Session{a.create(t, p.ID), a.create(t, p.ID)}
	sb := b.create(t, p.ID)
	time.Sleep(2 * heartbeat)

	proxy.Cut()
	cut := time.Now()
	// When b sees a lost, every browser of a is gone already.
	if !waitFor(ttl+5*heartbeat+2*time.Second, func() bool { return state(t, b.db, "a") == bb.NodeLost }) {
		t.Fatalf("a is %s %v after its link was cut; want lost", state(t, b.db, "a"), time.Since(cut))
	}
	lostAfter := time.Since(cut)
	for _, br := range a.l.Browsers() {
		if !br.Killed() {
			t.Errorf("a's browser %d still runs when b marked a lost (%v after the cut)", br.PID(), lostAfter)
		}
	}
	if n := a.l.Live(); n != 0 {
		t.Errorf("%d of a's browsers run when b marked a lost", n)
	}
	if a.member.IsMember() || a.member.Placeable() {
		t.Error("a still counts itself a member")
	}
	_, err := a.m.CreateSession(t.Context(), p.ID, bb.CreateSessionRequest{})
	if bb.CodeOf(err) != bb.CodeUnavailable {
		t.Errorf("create on a fenced node = %v; want CodeUnavailable", err)
	}
	for _, s := range sa {
		if !waitFor(2*time.Second, func() bool {
			got, err := b.db.Session(t.Context(), s.ID)
			return err == nil && got.Status == bb.StatusError
		}) {
			t.Errorf("a's session %s is not ERROR", s.ID)
		}
	}
	if got, _ := b.db.Session(t.Context(), sb.ID); got.Status != bb.StatusRunning {
		t.Errorf("b's session = %s; want RUNNING", got.Status)
	}

	proxy.Restore()
	if !waitFor(10*time.Second, a.member.Placeable) {
		t.Fatal("a did not join again after its link came back")
	}
	if st := state(t, b.db, "a"); st != bb.NodeActive {
		t.Errorf("a is %s after it joined again; want active", st)
	}
	s := a.create(t, p.ID)
	time.Sleep(ttl + 2*heartbeat) // b must leave a's new session alone
	if got, _ := b.db.Session(t.Context(), s.ID); got.Status != bb.StatusRunning {
		t.Errorf("a's new session = %s %q; want RUNNING", got.Status, got.EndReason)
	}
	if n := a.m.PendingEnds(); n != 0 {
		t.Errorf("a has %d ends not recorded after its link came back", n)
	}
}

// TestPostgresDrainAndLeave: an admin's drain in the store reaches the node, which
// refuses creates; after Leave the node is left and no survivor touches its sessions.
func TestPostgresDrainAndLeave(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	a, b := startNode(t, "a", url), startNode(t, "b", url)
	if err := b.db.SetNodeState(t.Context(), "a", bb.NodeDraining); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.member.DrainRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("a did not read the drain")
	}
	if a.member.Placeable() || !a.member.IsMember() {
		t.Errorf("draining a: placeable %v, member %v; want false, true", a.member.Placeable(), a.member.IsMember())
	}
	if err := a.member.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 2*heartbeat)
	if st := state(t, b.db, "a"); st != bb.NodeLeft {
		t.Errorf("a is %s; want left", st)
	}
}
