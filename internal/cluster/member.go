package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Local is this node's Manager as membership uses it; *bb.Manager implements it.
type Local interface {
	// Load is what a heartbeat reports: live sessions and warm launch keys.
	Load() (live int, warm []string)
	// Fence kills every browser of the node and refuses creates until Unfence.
	Fence(reason string) int
	Unfence()
	// Drain refuses creates for good; the live sessions run on.
	Drain()
	// NodeSessions and EndStoredSession end a lost peer's sessions in the store.
	NodeSessions(ctx context.Context, nodeID string) ([]*bb.Session, error)
	EndStoredSession(ctx context.Context, id string, status bb.SessionStatus, reason string) (*bb.Session, error)
}

// Config configures a Member. Zero durations take the defaults in brackets.
type Config struct {
	Store bb.NodeStore
	Local Local
	// ID is the node's id (the Manager's NodeID); URL is how peers reach it
	// (--cluster-url); Capacity its --max-sessions; Version its build.
	ID, URL  string
	Capacity int
	Version  string
	// Heartbeat is how often the node renews its membership [2s]; TTL how long a
	// peer may go without renewing before it is marked lost [10s]; Lease how long the
	// node goes on after its last successful renewal before it fences itself [8s].
	// Lease must be shorter than TTL by more than the time a fence takes.
	Heartbeat, TTL, Lease time.Duration
	// Now is the node's clock [time.Now]; tests move it by hand.
	Now    func() time.Time
	Logger *slog.Logger
}

// Reasons sessions end with, as the API shows them.
const (
	// ReasonNodeLost ends the sessions of a peer that stopped renewing its membership.
	ReasonNodeLost = "node lost"
	// ReasonFenced ends the sessions of a node that could not renew its own.
	ReasonFenced = "node fenced: lost its membership"
	// reasonLeft ends what a node that left did not end itself (its writes failed).
	reasonLeft = "node left with the session still live"
)

// sweepEvery is how often, in heartbeats, a member looks again for live sessions of
// nodes that are no longer live: a survivor that marked a node lost may have died
// before it ended the node's sessions. sweepWindow bounds how far back it looks.
// pruneAfter is how long the row of a node that left or was lost stays (for `admin
// nodes list`), then a sweep deletes it.
const (
	sweepEvery  = 15
	sweepWindow = time.Hour
	pruneAfter  = 24 * time.Hour
)

// Member is this node's membership of the cluster. Start it once; Leave (or Stop) it.
// Its methods are safe for concurrent use.
type Member struct {
	cfg  Config
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	joined   bool      // holds a membership row it renews
	fenced   bool      // killed its browsers; joins again when the store answers
	lease    time.Time // Now() at which the membership is up unless renewed
	state    bb.NodeState
	draining bool          // told to drain (Drain, or the store said so)
	drainC   chan struct{} // closed when the store first says draining
	peers    []*bb.Node    // every node, as last read
	steps    int
	retry    map[string]bool // lost nodes whose sessions are not all ended yet
}

// New returns a Member; it does nothing until Start.
func New(cfg Config) (*Member, error) {
	if cfg.Store == nil || cfg.Local == nil || cfg.ID == "" {
		return nil, errors.New("cluster: store, local and id are required")
	}
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 8 * time.Second
	}
	if cfg.Lease >= cfg.TTL || cfg.Heartbeat >= cfg.Lease {
		return nil, fmt.Errorf("cluster: want heartbeat (%v) < lease (%v) < ttl (%v)", cfg.Heartbeat, cfg.Lease, cfg.TTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Member{cfg: cfg, log: cfg.Logger, drainC: make(chan struct{}), retry: make(map[string]bool)}, nil
}

// CheckURL checks a --cluster-url: an absolute http(s) URL with a host and nothing
// else (no path, query, fragment or credentials), as peers prefix request paths to it.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("cluster URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("cluster URL %q: want http:// or https://", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("cluster URL %q: has no host", raw)
	case u.User != nil:
		return fmt.Errorf("cluster URL %q: must not carry credentials", raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("cluster URL %q: must have no path, query or fragment", raw)
	}
	return nil
}

// Start joins the cluster (an error when the store refuses) and then keeps the
// membership in the background until Leave or Stop.
func (m *Member) Start(ctx context.Context) error {
	if err := m.join(ctx); err != nil {
		return err
	}
	ctx, m.stop = context.WithCancel(context.WithoutCancel(ctx))
	m.done = make(chan struct{})
	go m.run(ctx)
	return nil
}

// run steps every Heartbeat, and at the lease's end when that comes first.
func (m *Member) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTimer(m.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.step(ctx)
		wait := m.cfg.Heartbeat
		m.mu.Lock()
		if m.joined {
			wait = min(wait, max(m.lease.Sub(m.cfg.Now()), time.Millisecond))
		}
		m.mu.Unlock()
		t.Reset(wait)
	}
}

// Stop stops renewing the membership without leaving: what a crash looks like to the
// peers. For tests and for a shutdown that could not end its sessions.
func (m *Member) Stop() {
	if m.stop != nil {
		m.stop()
		<-m.done
	}
}

// Leave stops renewing and marks the node left: call it once its sessions have ended.
func (m *Member) Leave(ctx context.Context) error {
	m.Stop()
	m.mu.Lock()
	joined := m.joined
	m.joined = false
	m.mu.Unlock()
	if joined { // a last heartbeat, so that the row shows the load it left with
		live, warm := m.cfg.Local.Load()
		_, _ = m.cfg.Store.Heartbeat(ctx, m.cfg.ID, live, warm) // the state below is what matters
	}
	if err := m.cfg.Store.SetNodeState(ctx, m.cfg.ID, bb.NodeLeft); err != nil {
		return fmt.Errorf("leave the cluster: %w", err)
	}
	m.log.Info("node left the cluster", "node_id", m.cfg.ID)
	return nil
}

// join records the node as a fresh member.
func (m *Member) join(ctx context.Context) error {
	live, warm := m.cfg.Local.Load()
	sent := m.cfg.Now()
	n := &bb.Node{ID: m.cfg.ID, URL: m.cfg.URL, Capacity: m.cfg.Capacity, Live: live, Warm: warm, Version: m.cfg.Version}
	if err := m.cfg.Store.JoinNode(ctx, n); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	m.mu.Lock()
	m.joined, m.lease, m.state = true, sent.Add(m.cfg.Lease), bb.NodeActive
	wasFenced := m.fenced
	m.fenced = false
	m.mu.Unlock()
	if wasFenced {
		m.cfg.Local.Unfence()
	}
	m.log.Info("node joined the cluster", "node_id", m.cfg.ID, "url", m.cfg.URL, "capacity", m.cfg.Capacity, "rejoin", wasFenced)
	return nil
}

// step is one round: renew (or join again after a fence), fence when the lease is up,
// then, as a member, read the peers and mark lost those that stopped renewing.
func (m *Member) step(ctx context.Context) {
	m.mu.Lock()
	joined, draining, lease := m.joined, m.draining, m.lease
	m.steps++
	sweep := m.steps%sweepEvery == 0
	m.mu.Unlock()
	switch {
	case !joined && draining:
		return // a fenced node that drains has nothing left to run: it leaves
	case !joined:
		jctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
		err := m.join(jctx)
		cancel()
		if err != nil {
			m.log.Warn("cluster: join again", "node_id", m.cfg.ID, "err", err)
			return
		}
	case !m.cfg.Now().Before(lease):
		m.fence("no heartbeat within the lease")
		return
	default:
		if !m.heartbeat(ctx, lease) {
			return
		}
	}
	// Watching the peers must not hold up the next lease check either.
	m.mu.Lock()
	left := m.lease.Sub(m.cfg.Now())
	m.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, max(left, time.Millisecond))
	defer cancel()
	m.watchPeers(wctx, sweep)
}

// heartbeat renews the membership; it reports whether the node is still a member.
func (m *Member) heartbeat(ctx context.Context, lease time.Time) bool {
	live, warm := m.cfg.Local.Load()
	sent := m.cfg.Now()
	// No renewal may outlast the lease: the node must fence in time even when the
	// store hangs rather than refuses.
	hctx, cancel := context.WithTimeout(ctx, max(lease.Sub(sent), time.Millisecond))
	n, err := m.cfg.Store.Heartbeat(hctx, m.cfg.ID, live, warm)
	cancel()
	switch {
	case errors.Is(err, bb.ErrNodeNotMember):
		m.fence("the cluster no longer counts it a member")
		return false
	case err != nil:
		if !m.cfg.Now().Before(lease) {
			m.fence("no heartbeat within the lease: " + err.Error())
		} else {
			m.log.Warn("cluster: heartbeat failed", "node_id", m.cfg.ID, "err", err, "lease_left", lease.Sub(m.cfg.Now()))
		}
		return false
	}
	m.mu.Lock()
	m.lease, m.state = sent.Add(m.cfg.Lease), n.State
	drain := n.State == bb.NodeDraining && !m.draining
	m.mu.Unlock()
	if drain {
		m.log.Warn("node draining: set in the cluster's database (admin nodes drain)", "node_id", m.cfg.ID)
		m.startDrain()
		close(m.drainC)
	}
	return true
}

// fence gives up the membership: every browser of the node is killed and its
// sessions end ERROR; the node joins again as a new member once the store answers.
func (m *Member) fence(why string) {
	m.mu.Lock()
	if !m.joined {
		m.mu.Unlock()
		return
	}
	m.joined, m.fenced = false, true
	m.mu.Unlock()
	m.log.Error("node fenced: killing every browser of this node", "node_id", m.cfg.ID, "why", why)
	n := m.cfg.Local.Fence(ReasonFenced)
	m.log.Error("node fenced", "node_id", m.cfg.ID, "sessions_ended", n)
}
