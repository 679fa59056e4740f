package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// clock is a hand-moved clock shared by a fake store and the members under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var errDown = errors.New("connection refused")

// fakeStore is an in-memory bb.NodeStore on a clock; down makes every call fail as an
// unreachable database does, and onHeartbeat runs inside Heartbeat (to move the clock
// while a renewal is in flight).
type fakeStore struct {
	clock *clock
	mu    sync.Mutex
	nodes map[string]*bb.Node
	down  bool

	onHeartbeat func()
}

func newFakeStore(c *clock) *fakeStore { return &fakeStore{clock: c, nodes: make(map[string]*bb.Node)} }

func (f *fakeStore) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeStore) JoinNode(ctx context.Context, n *bb.Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	now := f.clock.Now()
	c := *n
	c.State, c.StartedAt, c.HeartbeatAt = bb.NodeActive, now, now
	f.nodes[n.ID] = &c
	n.State, n.StartedAt, n.HeartbeatAt = c.State, now, now
	return nil
}

func (f *fakeStore) Heartbeat(ctx context.Context, id string, live int, warm []string) (*bb.Node, error) {
	if f.onHeartbeat != nil {
		f.onHeartbeat()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	n := f.nodes[id]
	if n == nil || !n.State.Live() {
		return nil, bb.ErrNodeNotMember
	}
	n.HeartbeatAt, n.Live, n.Warm = f.clock.Now(), live, warm
	c := *n
	return &c, nil
}

func (f *fakeStore) Nodes(ctx context.Context) ([]*bb.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	var out []*bb.Node
	for _, n := range f.nodes {
		c := *n
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *bb.Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeStore) SetNodeState(ctx context.Context, id string, state bb.NodeState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	n := f.nodes[id]
	if n == nil {
		return bb.Errorf(bb.CodeNotFound, "node %q not found", id)
	}
	if (state == bb.NodeActive || state == bb.NodeDraining) && !n.State.Live() {
		return bb.Errorf(bb.CodeConflict, "node %q is not live", id)
	}
	n.State = state
	return nil
}

func (f *fakeStore) ExpireNodes(ctx context.Context, ttl time.Duration) ([]*bb.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	var out []*bb.Node
	for _, n := range f.nodes {
		if n.State.Live() && f.clock.Now().Sub(n.HeartbeatAt) > ttl {
			n.State = bb.NodeLost
			c := *n
			out = append(out, &c)
		}
	}
	return out, nil
}

func (f *fakeStore) PruneNodes(ctx context.Context, olderThan time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errDown
	}
	n := 0
	for id, node := range f.nodes {
		if !node.State.Live() && f.clock.Now().Sub(node.HeartbeatAt) > olderThan {
			delete(f.nodes, id)
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) state(id string) bb.NodeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[id]; n != nil {
		return n.State
	}
	return ""
}

// fakeLocal is a Manager's side: sessions by node in a shared fake session table.
type fakeLocal struct {
	id       string
	sessions *sessionTable

	mu       sync.Mutex
	fences   int
	unfences int
	fenced   bool
	drained  bool
}

// sessionTable is the sessions of every node, as the shared store has them.
type sessionTable struct {
	mu   sync.Mutex
	rows map[string]*bb.Session
	down bool
}

func (st *sessionTable) add(id, node string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rows == nil {
		st.rows = make(map[string]*bb.Session)
	}
	st.rows[id] = &bb.Session{ID: id, NodeID: node, Status: bb.StatusRunning}
}

func (st *sessionTable) get(id string) bb.Session {
	st.mu.Lock()
	defer st.mu.Unlock()
	return *st.rows[id]
}

func (l *fakeLocal) Load() (int, []string) {
	l.sessions.mu.Lock()
	defer l.sessions.mu.Unlock()
	n := 0
	for _, s := range l.sessions.rows {
		if s.NodeID == l.id && !s.Status.Terminal() {
			n++
		}
	}
	return n, []string{""}
}

func (l *fakeLocal) Fence(reason string) int {
	l.mu.Lock()
	l.fences++
	l.fenced = true
	l.mu.Unlock()
	return 0
}

func (l *fakeLocal) Unfence() {
	l.mu.Lock()
	l.unfences++
	l.fenced = false
	l.mu.Unlock()
}

func (l *fakeLocal) Drain() {
	l.mu.Lock()
	l.drained = true
	l.mu.Unlock()
}

func (l *fakeLocal) counts() (fences, unfences int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fences, l.unfences
}

func (l *fakeLocal) NodeSessions(ctx context.Context, nodeID string) ([]*bb.Session, error) {
	st := l.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return nil, errDown
	}
	var out []*bb.Session
	for _, s := range st.rows {
		if s.NodeID == nodeID && !s.Status.Terminal() {
			c := *s
			out = append(out, &c)
		}
	}
	return out, nil
}

func (l *fakeLocal) EndStoredSession(ctx context.Context, id string, status bb.SessionStatus, reason string) (*bb.Session, error) {
	st := l.sessions
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return nil, errDown
	}
	s := st.rows[id]
	if s == nil {
		return nil, bb.Errorf(bb.CodeNotFound, "no session %s", id)
	}
	if !s.Status.Terminal() {
		s.Status, s.EndReason = status, reason
	}
	c := *s
	return &c, nil
}
