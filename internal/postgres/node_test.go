package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
)

// age moves the heartbeat of node id back by d on the database itself, as if the node
// had stopped renewing d ago.
func age(t *testing.T, url, id string, d time.Duration) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if _, err := conn.Exec(t.Context(), `UPDATE nodes SET heartbeat_at = heartbeat_at - $2 WHERE id = $1`,
		id, d.Milliseconds()); err != nil {
		t.Fatal(err)
	}
}

// dbClock returns the database's clock.
func dbClock(t *testing.T, url string) time.Time {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var now time.Time
	if err := conn.QueryRow(t.Context(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// testNodes: the life of a member through the NodeStore, with the database's clock.
func testNodes(t *testing.T, url string) {
	db := open(t, url)
	ctx := t.Context()
	if nodes, err := db.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of an empty store = %v, %v; want none", nodes, err)
	}
	if _, err := db.Heartbeat(ctx, "a", 0, nil); !errors.Is(err, bb.ErrNodeNotMember) {
		t.Fatalf("Heartbeat of an unknown node = %v; want ErrNodeNotMember", err)
	}
	a := &bb.Node{ID: "a", URL: "http://10.0.0.1:8080", Capacity: 4, Warm: []string{""}, Version: "v1", State: bb.NodeLost}
	if err := db.JoinNode(ctx, a); err != nil {
		t.Fatal(err)
	}
	before := dbClock(t, url)
	if a.State != bb.NodeActive || a.StartedAt.IsZero() || !a.StartedAt.Equal(a.HeartbeatAt) {
		t.Fatalf("joined node = %+v; want active, started at its first heartbeat", a)
	}
	if d := before.Sub(a.HeartbeatAt); d < 0 || d > 5*time.Second {
		t.Fatalf("heartbeat at %v, database clock %v: not the database's clock", a.HeartbeatAt, before)
	}
	b := &bb.Node{ID: "b", URL: "http://10.0.0.2:8080", Capacity: 2}
	if err := db.JoinNode(ctx, b); err != nil {
		t.Fatal(err)
	}

	time.Sleep(5 * time.Millisecond)
	got, err := db.Heartbeat(ctx, "a", 3, []string{"", "k1"})
	if err != nil {
		t.Fatal(err)
	}
	want := bb.Node{ID: "a", URL: a.URL, State: bb.NodeActive, Capacity: 4, Live: 3, Warm: []string{"", "k1"},
		Version: "v1", StartedAt: a.StartedAt}
	if got.HeartbeatAt.Before(a.HeartbeatAt) {
		t.Errorf("heartbeat went back: %v after %v", got.HeartbeatAt, a.HeartbeatAt)
	}
	got.HeartbeatAt = time.Time{}
	if !equalNode(got, &want) {
		t.Errorf("Heartbeat = %+v; want %+v", got, want)
	}

	// An admin's drain shows in the next heartbeat; a draining node is still a member.
	if err := db.SetNodeState(ctx, "a", bb.NodeDraining); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Heartbeat(ctx, "a", 1, nil); err != nil || got.State != bb.NodeDraining || got.Warm != nil {
		t.Fatalf("Heartbeat of a draining node = %+v, %v; want draining, no warm keys", got, err)
	}
	if err := db.SetNodeState(ctx, "nope", bb.NodeDraining); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("SetNodeState of an unknown node = %v; want CodeNotFound", err)
	}
	if err := db.SetNodeState(ctx, "a", "sleeping"); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("SetNodeState to an unknown state = %v; want CodeInvalid", err)
	}

	nodes, err := db.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(nodes); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("Nodes = %v; want a, b", ids)
	}
	if nodes[1].URL != b.URL || nodes[1].Capacity != 2 || nodes[1].State != bb.NodeActive {
		t.Errorf("Nodes[1] = %+v", nodes[1])
	}

	// Left and lost nodes are no longer members: their heartbeat is refused and does
	// not bring them back.
	for _, st := range []bb.NodeState{bb.NodeLeft, bb.NodeLost} {
		if err := db.SetNodeState(ctx, "b", st); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Heartbeat(ctx, "b", 0, nil); !errors.Is(err, bb.ErrNodeNotMember) {
			t.Errorf("Heartbeat of a %s node = %v; want ErrNodeNotMember", st, err)
		}
		if err := db.SetNodeState(ctx, "b", bb.NodeDraining); bb.CodeOf(err) != bb.CodeConflict {
			t.Errorf("SetNodeState(draining) of a %s node = %v; want CodeConflict", st, err)
		}
		nodes, _ := db.Nodes(ctx)
		if nodes[1].State != st {
			t.Errorf("after a refused heartbeat node b is %s; want %s", nodes[1].State, st)
		}
	}
	// Joining again makes a fresh member of the same id.
	b.Capacity = 5
	if err := db.JoinNode(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Heartbeat(ctx, "b", 0, nil); err != nil || got.State != bb.NodeActive || got.Capacity != 5 {
		t.Errorf("Heartbeat after a rejoin = %+v, %v; want active with capacity 5", got, err)
	}
	if err := db.JoinNode(ctx, &bb.Node{}); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("JoinNode without an id = %v; want CodeInvalid", err)
	}
}

// testExpireNodes: only live nodes late by more than ttl on the database's clock are
// marked lost, once.
func testExpireNodes(t *testing.T, url string) {
	db := open(t, url)
	ctx := t.Context()
	for _, id := range []string{"fresh", "late", "late-draining", "late-left", "late-lost"} {
		if err := db.JoinNode(ctx, &bb.Node{ID: id, URL: "http://" + id}); err != nil {
			t.Fatal(err)
		}
	}
	for id, st := range map[string]bb.NodeState{"late-draining": bb.NodeDraining, "late-left": bb.NodeLeft, "late-lost": bb.NodeLost} {
		if err := db.SetNodeState(ctx, id, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"late", "late-draining", "late-left", "late-lost"} {
		age(t, url, id, 11*time.Second)
	}
	age(t, url, "fresh", 9*time.Second)
	got, err := db.ExpireNodes(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(got); !slices.Equal(ids, []string{"late", "late-draining"}) {
		t.Fatalf("ExpireNodes = %v; want late, late-draining", ids)
	}
	for _, n := range got {
		if n.State != bb.NodeLost {
			t.Errorf("expired node %s is %s; want lost", n.ID, n.State)
		}
	}
	if got, err := db.ExpireNodes(ctx, 10*time.Second); err != nil || len(got) != 0 {
		t.Errorf("second ExpireNodes = %v, %v; want none", nodeIDs(got), err)
	}
	if _, err := db.Heartbeat(ctx, "late", 0, nil); !errors.Is(err, bb.ErrNodeNotMember) {
		t.Errorf("Heartbeat of an expired node = %v; want ErrNodeNotMember", err)
	}
	if got, err := db.ExpireNodes(ctx, time.Hour); err != nil || len(got) != 0 {
		t.Errorf("ExpireNodes(1h) = %v, %v; want none", nodeIDs(got), err)
	}

	// PruneNodes deletes only the nodes no longer live whose heartbeat is old enough:
	// late-left, late-lost, late and late-draining (lost now) are 11 s old; fresh is live.
	age(t, url, "late", time.Hour)
	age(t, url, "late-left", time.Hour)
	age(t, url, "fresh", time.Hour) // live: never pruned, however old
	if n, err := db.PruneNodes(ctx, 30*time.Minute); err != nil || n != 2 {
		t.Errorf("PruneNodes(30m) = %d, %v; want 2 (late, late-left)", n, err)
	}
	all, err := db.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := nodeIDs(all); !slices.Equal(ids, []string{"fresh", "late-draining", "late-lost"}) {
		t.Errorf("nodes after PruneNodes = %v; want fresh, late-draining, late-lost", ids)
	}
	if _, err := db.Heartbeat(ctx, "late", 0, nil); !errors.Is(err, bb.ErrNodeNotMember) {
		t.Errorf("Heartbeat of a pruned node = %v; want ErrNodeNotMember", err)
	}
}

// testExpireRace: survivors expiring at once, each with its own connections, get each
// late node exactly once between them.
func testExpireRace(t *testing.T, url string) {
	const nodes, survivors = 60, 6
	setup := open(t, url)
	var late []string
	for i := range nodes {
		id := "n" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		late = append(late, id)
		if err := setup.JoinNode(t.Context(), &bb.Node{ID: id, URL: "http://" + id}); err != nil {
			t.Fatal(err)
		}
		age(t, url, id, time.Minute)
	}
	dbs := make([]*postgres.DB, survivors)
	for i := range dbs {
		dbs[i] = open(t, url)
		if err := dbs[i].Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, db := range dbs {
		for range 3 {
			wg.Go(func() {
				<-start
				for range 5 {
					ns, err := db.ExpireNodes(t.Context(), 10*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, nodeIDs(ns)...)
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, late) {
		t.Fatalf("expired %d nodes (%v); want each of the %d exactly once", len(got), got, len(late))
	}
}

func nodeIDs(ns []*bb.Node) []string {
	ids := []string{}
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	return ids
}

func equalNode(a, b *bb.Node) bool {
	return a.ID == b.ID && a.URL == b.URL && a.State == b.State && a.Capacity == b.Capacity && a.Live == b.Live &&
		slices.Equal(a.Warm, b.Warm) && a.Version == b.Version && a.StartedAt.Equal(b.StartedAt) && a.HeartbeatAt.Equal(b.HeartbeatAt)
}
