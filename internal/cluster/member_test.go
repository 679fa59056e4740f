package cluster

import (
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// fakeCluster is members on one fake store and one clock; tests step them by hand.
type fakeCluster struct {
	clock    *clock
	store    *fakeStore
	sessions *sessionTable
}

func newFakeCluster() *fakeCluster {
	c := newClock()
	return &fakeCluster{clock: c, store: newFakeStore(c), sessions: &sessionTable{}}
}

// member starts a member with the default timing on the fake clock; it is never run
// in the background: the test calls step.
func (fc *fakeCluster) member(t *testing.T, id string) (*Member, *fakeLocal) {
	t.Helper()
	l := &fakeLocal{id: id, sessions: fc.sessions}
	m, err := New(Config{Store: fc.store, Local: l, ID: id, URL: "http://" + id + ":8080", Capacity: 4, Now: fc.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.join(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m, l
}

// TestNodeLost: a peer that stops renewing is marked lost after the TTL by the one
// survivor that expires it, which ends exactly its live sessions ERROR "node lost".
func TestNodeLost(t *testing.T) {
	fc := newFakeCluster()
	a, _ := fc.member(t, "a")
	b, _ := fc.member(t, "b")
	c, _ := fc.member(t, "c")
	fc.sessions.add("a1", "a")
	fc.sessions.add("c1", "c")
	fc.sessions.add("c2", "c")
	ctx := t.Context()
	// c stops (kill -9); a and b go on.
	for range 5 {
		fc.clock.Advance(2 * time.Second)
		a.step(ctx)
		b.step(ctx)
	}
	// 10 s since c's last heartbeat: not yet late by more than the TTL.
	if st := fc.store.state("c"); st != bb.NodeActive {
		t.Fatalf("c is %s after 10 s; want active", st)
	}
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	b.step(ctx)
	if st := fc.store.state("c"); st != bb.NodeLost {
		t.Fatalf("c is %s after 12 s; want lost", st)
	}
	for _, id := range []string{"c1", "c2"} {
		if s := fc.sessions.get(id); s.Status != bb.StatusError || s.EndReason != ReasonNodeLost {
			t.Errorf("session %s = %s %q; want ERROR %q", id, s.Status, s.EndReason, ReasonNodeLost)
		}
	}
	if s := fc.sessions.get("a1"); s.Status != bb.StatusRunning {
		t.Errorf("a's session = %s; want RUNNING", s.Status)
	}
	if !a.Placeable() || !b.Placeable() || !a.IsMember() {
		t.Error("the survivors are not placeable members")
	}
	peers := a.Peers()
	if len(peers) != 3 || peers[2].ID != "c" || peers[2].State != bb.NodeLost {
		t.Errorf("Peers = %v; want a, b, c with c lost", peers)
	}
	_ = c
}

// TestFenceOnLease: a node that cannot renew fences itself when its lease is up (8 s
// after it sent its last successful heartbeat), before any peer may count it lost
// (10 s after the store stamped that heartbeat), and joins again as a fresh member
// once the store answers.
func TestFenceOnLease(t *testing.T) {
	fc := newFakeCluster()
	a, la := fc.member(t, "a")
	b, _ := fc.member(t, "b")
	ctx := t.Context()
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	b.step(ctx)

	// a's renewals fail from now on (its database link is cut); b's do not.
	down := &fakeStore{clock: fc.clock, nodes: fc.store.nodes, down: true}
	a.cfg.Store = down
	for i := range 3 {
		fc.clock.Advance(2 * time.Second)
		a.step(ctx)
		b.step(ctx)
		if f, _ := la.counts(); f != 0 || !a.IsMember() {
			t.Fatalf("a fenced after %d s without a heartbeat; the lease is 8 s", 2*(i+1))
		}
	}
	fc.clock.Advance(2 * time.Second) // 8 s: the lease is up
	a.step(ctx)
	if f, _ := la.counts(); f != 1 {
		t.Fatalf("a fenced %d times when its lease was up; want 1", f)
	}
	if a.IsMember() || a.Placeable() {
		t.Error("a fenced node is still a placeable member")
	}
	if st := fc.store.state("a"); st != bb.NodeActive {
		t.Errorf("a is %s in the store when it fenced itself; want still active (no peer may have marked it yet)", st)
	}
	fc.clock.Advance(2*time.Second + time.Millisecond)
	b.step(ctx)
	if st := fc.store.state("a"); st != bb.NodeLost {
		t.Fatalf("a is %s after 10 s without a heartbeat; want lost", st)
	}
	a.step(ctx) // still cut off: no join
	if f, u := la.counts(); f != 1 || u != 0 {
		t.Errorf("fences, unfences = %d, %d; want 1, 0", f, u)
	}
	a.cfg.Store = fc.store // the link is back
	a.step(ctx)
	if f, u := la.counts(); f != 1 || u != 1 {
		t.Errorf("fences, unfences = %d, %d after the store came back; want 1, 1", f, u)
	}
	if st := fc.store.state("a"); st != bb.NodeActive || !a.Placeable() {
		t.Errorf("a is %s, placeable %v after it joined again; want active, placeable", st, a.Placeable())
	}
}

// TestLeaseFromSend: the lease counts from when a heartbeat was sent, not answered.
func TestLeaseFromSend(t *testing.T) {
	fc := newFakeCluster()
	a, la := fc.member(t, "a")
	ctx := t.Context()
	fc.store.onHeartbeat = func() { fc.clock.Advance(3 * time.Second) } // a slow database
	fc.clock.Advance(2 * time.Second)
	a.step(ctx) // sent at 2 s, answered at 5 s: the lease runs to 10 s
	fc.store.onHeartbeat = nil
	fc.store.setDown(true)
	fc.clock.Advance(4*time.Second + 999*time.Millisecond)
	a.step(ctx)
	if f, _ := la.counts(); f != 0 {
		t.Fatal("fenced before the lease was up")
	}
	fc.clock.Advance(time.Millisecond)
	a.step(ctx)
	if f, _ := la.counts(); f != 1 {
		t.Fatal("not fenced 8 s after the last successful heartbeat was sent")
	}
}

// TestMarkedLost: a node whose heartbeat finds it marked lost (it was paused) fences
// at once and joins again.
func TestMarkedLost(t *testing.T) {
	fc := newFakeCluster()
	a, la := fc.member(t, "a")
	ctx := t.Context()
	if err := fc.store.SetNodeState(ctx, "a", bb.NodeLost); err != nil {
		t.Fatal(err)
	}
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	if f, _ := la.counts(); f != 1 {
		t.Fatalf("fences = %d; want 1", f)
	}
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	if st := fc.store.state("a"); st != bb.NodeActive || !a.IsMember() {
		t.Errorf("a is %s after it joined again; want active", st)
	}
}

// TestExpiresItself: a survivor whose own heartbeats were late (paused past the TTL)
// and that expires itself fences; it never ends its own sessions while it runs them.
func TestExpiresItself(t *testing.T) {
	fc := newFakeCluster()
	a, la := fc.member(t, "a")
	fc.sessions.add("a1", "a")
	fc.clock.Advance(11 * time.Second)
	a.watchPeers(t.Context(), false) // as if the heartbeat had raced ahead
	if f, _ := la.counts(); f != 1 {
		t.Fatalf("fences = %d; want 1", f)
	}
	if s := fc.sessions.get("a1"); s.Status != bb.StatusRunning {
		t.Errorf("a's own session = %s %q; a fenced node ends its own (Fence), not as a lost peer", s.Status, s.EndReason)
	}
}

// TestAdminDrain: a drain set in the store reaches the node at its next heartbeat;
// the node stays a member but takes no placements.
func TestAdminDrain(t *testing.T) {
	fc := newFakeCluster()
	a, la := fc.member(t, "a")
	ctx := t.Context()
	if err := fc.store.SetNodeState(ctx, "a", bb.NodeDraining); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.DrainRequested():
		t.Fatal("drain requested before a heartbeat read it")
	default:
	}
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	select {
	case <-a.DrainRequested():
	default:
		t.Fatal("the drain was not read at the heartbeat")
	}
	la.mu.Lock()
	drained := la.drained
	la.mu.Unlock()
	if !drained {
		t.Error("the Manager was not told to drain")
	}
	if a.Placeable() || !a.IsMember() || !a.Draining() {
		t.Errorf("placeable %v, member %v, draining %v; want false, true, true", a.Placeable(), a.IsMember(), a.Draining())
	}
	fc.clock.Advance(2 * time.Second)
	a.step(ctx) // a second heartbeat does not close the channel twice
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if st := fc.store.state("a"); st != bb.NodeLeft {
		t.Errorf("a is %s after Leave; want left", st)
	}
}

// TestRetryLostEnds: ends of a lost node's sessions that the store refused are retried
// at the next steps by the survivor that expired it; and a survivor that died after
// expiring a node leaves its sessions to the others' sweep.
func TestRetryLostEnds(t *testing.T) {
	fc := newFakeCluster()
	a, _ := fc.member(t, "a")
	b, _ := fc.member(t, "b")
	_, _ = fc.member(t, "c")
	fc.sessions.add("c1", "c")
	ctx := t.Context()
	fc.sessions.mu.Lock()
	fc.sessions.down = true
	fc.sessions.mu.Unlock()
	for range 6 { // c stops; a, stepping first, expires it and cannot end c1
		fc.clock.Advance(2 * time.Second)
		a.step(ctx)
		b.step(ctx)
	}
	if st := fc.store.state("c"); st != bb.NodeLost {
		t.Fatalf("c = %s; want lost", st)
	}
	fc.sessions.mu.Lock()
	fc.sessions.down = false
	fc.sessions.mu.Unlock()
	fc.clock.Advance(2 * time.Second)
	a.step(ctx)
	if s := fc.sessions.get("c1"); s.Status != bb.StatusError {
		t.Errorf("c1 = %s after the retry; want ERROR", s.Status)
	}

	// d is expired by a survivor that dies before it ends d1: b's sweep ends it.
	_, _ = fc.member(t, "d")
	fc.sessions.add("d1", "d")
	if err := fc.store.SetNodeState(ctx, "d", bb.NodeLost); err != nil {
		t.Fatal(err)
	}
	for range sweepEvery {
		fc.clock.Advance(2 * time.Second)
		b.step(ctx)
	}
	if s := fc.sessions.get("d1"); s.Status != bb.StatusError || s.EndReason != ReasonNodeLost {
		t.Errorf("d1 = %s %q after b's sweep; want ERROR %q", s.Status, s.EndReason, ReasonNodeLost)
	}
}

// TestRejoinedKeepsSessions: a lost node that joined again before a survivor ended
// its sessions keeps them: a survivor never ends a live node's sessions.
func TestRejoinedKeepsSessions(t *testing.T) {
	fc := newFakeCluster()
	a, _ := fc.member(t, "a")
	fc.member(t, "c")
	fc.sessions.add("c1", "c")
	if err := fc.store.SetNodeState(t.Context(), "c", bb.NodeLost); err != nil {
		t.Fatal(err)
	}
	if err := fc.store.JoinNode(t.Context(), &bb.Node{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	if !a.endGone(t.Context(), "c") {
		t.Fatal("endGone of a node that joined again reports work left")
	}
	if s := fc.sessions.get("c1"); s.Status != bb.StatusRunning {
		t.Errorf("c1 = %s; want RUNNING (c joined again)", s.Status)
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"http://10.0.3.7:8080", "https://node-1.internal", "http://[::1]:8080/", "http://127.0.0.1:1"} {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v; want nil", u, err)
		}
	}
	for _, u := range []string{"", "10.0.3.7:8080", "ftp://h", "http://", "http://u:p@h", "http://h/x", "http://h?a=1", "http://h#f", "http://:80", "http://h:8080 x"} {
		if err := CheckURL(u); err == nil {
			t.Errorf("CheckURL(%q) = nil; want an error", u)
		}
	}
}

func TestNewChecksTiming(t *testing.T) {
	fc := newFakeCluster()
	l := &fakeLocal{sessions: fc.sessions}
	for _, cfg := range []Config{
		{Lease: 10 * time.Second, TTL: 10 * time.Second},
		{Heartbeat: 8 * time.Second},
	} {
		cfg.Store, cfg.Local, cfg.ID, cfg.URL = fc.store, l, "a", "http://a"
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestPruneNodes: a sweep deletes the rows of nodes that left or were lost more than
// pruneAfter ago, and no live node's, however quiet.
func TestPruneNodes(t *testing.T) {
	fc := newFakeCluster()
	a, _ := fc.member(t, "a")
	fc.member(t, "gone")
	fc.member(t, "left")
	ctx := t.Context()
	if err := fc.store.SetNodeState(ctx, "left", bb.NodeLeft); err != nil {
		t.Fatal(err)
	}
	for range sweepEvery { // gone stops: a marks it lost
		fc.clock.Advance(2 * time.Second)
		a.step(ctx)
	}
	if st := fc.store.state("gone"); st != bb.NodeLost {
		t.Fatalf("gone = %s; want lost", st)
	}
	fc.clock.Advance(pruneAfter)
	for range sweepEvery {
		fc.clock.Advance(2 * time.Second)
		a.step(ctx)
	}
	for id, want := range map[string]bb.NodeState{"a": bb.NodeActive, "gone": "", "left": ""} {
		if st := fc.store.state(id); st != want {
			t.Errorf("%s = %q after pruneAfter and a sweep; want %q", id, st, want)
		}
	}
}
