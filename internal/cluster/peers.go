package cluster

import (
	"context"
	"slices"
	"time"

	bb "github.com/browserd/browserd"
)

// watchPeers marks lost the live nodes late by more than TTL and ends their sessions,
// reads every node for Peers, and, when sweep is set, looks again for live sessions
// of nodes that are gone. Each lost node goes to exactly one survivor (ExpireNodes);
// the one that gets it retries the ends until the store takes them all.
func (m *Member) watchPeers(ctx context.Context, sweep bool) {
	lost, err := m.cfg.Store.ExpireNodes(ctx, m.cfg.TTL)
	if err != nil {
		m.log.Warn("cluster: expire nodes", "err", err)
	}
	for _, n := range lost {
		if n.ID == m.cfg.ID { // its own heartbeats were late (a paused process)
			m.fence("marked itself lost: its own heartbeats were late")
			continue
		}
		m.log.Error("node lost: no heartbeat within the TTL; ending its sessions", "node_id", n.ID, "url", n.URL,
			"last_heartbeat", n.HeartbeatAt, "live_sessions", n.Live)
		m.mu.Lock()
		m.retry[n.ID] = true
		m.mu.Unlock()
	}
	nodes, err := m.cfg.Store.Nodes(ctx)
	if err != nil {
		m.log.Warn("cluster: list nodes", "err", err)
	} else {
		m.mu.Lock()
		m.peers = nodes
		if sweep {
			for _, id := range gone(nodes, m.cfg.ID) {
				m.retry[id] = true
			}
		}
		m.mu.Unlock()
	}
	if sweep {
		// Long after the sweeps stopped looking at them (sweepWindow), the rows of nodes
		// that left or were lost go.
		if n, err := m.cfg.Store.PruneNodes(ctx, pruneAfter); err != nil {
			m.log.Warn("cluster: prune nodes", "err", err)
		} else if n > 0 {
			m.log.Info("cluster: pruned nodes that left or were lost", "nodes", n, "older_than", pruneAfter)
		}
	}
	m.mu.Lock()
	ids := make([]string, 0, len(m.retry))
	for id := range m.retry {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if m.endGone(ctx, id) {
			m.mu.Lock()
			delete(m.retry, id)
			m.mu.Unlock()
		}
	}
}

// gone returns the nodes other than self that are no longer live and stopped within
// sweepWindow of the freshest heartbeat (the database's clock).
func gone(nodes []*bb.Node, self string) []string {
	var newest time.Time
	for _, n := range nodes {
		if n.HeartbeatAt.After(newest) {
			newest = n.HeartbeatAt
		}
	}
	var ids []string
	for _, n := range nodes {
		if n.ID != self && !n.State.Live() && newest.Sub(n.HeartbeatAt) < sweepWindow {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// endGone ends, ERROR, the sessions the store has as live on node id, which is no
// longer live; it reports whether none is left. It reads the node's row again after it
// listed the sessions: when the node has joined again by then, every session listed was
// created before that join, and the node ends those itself (fence, reconcile), so none
// of its new sessions is ever ended here.
func (m *Member) endGone(ctx context.Context, id string) bool {
	sessions, err := m.cfg.Local.NodeSessions(ctx, id)
	if err != nil {
		m.log.Warn("cluster: list the sessions of a lost node", "node_id", id, "err", err)
		return false
	}
	if len(sessions) == 0 {
		return true
	}
	nodes, err := m.cfg.Store.Nodes(ctx)
	if err != nil {
		m.log.Warn("cluster: list nodes", "err", err)
		return false
	}
	reason := ReasonNodeLost
	if i := slices.IndexFunc(nodes, func(n *bb.Node) bool { return n.ID == id }); i >= 0 {
		if nodes[i].State.Live() {
			m.log.Info("node joined again; it ends its earlier sessions itself", "node_id", id)
			return true
		}
		if nodes[i].State == bb.NodeLeft {
			reason = reasonLeft
		}
	}
	ended, failed := 0, 0
	for _, s := range sessions {
		if _, err := m.cfg.Local.EndStoredSession(ctx, s.ID, bb.StatusError, reason); err != nil && bb.CodeOf(err) != bb.CodeNotFound {
			m.log.Warn("cluster: end a session of a lost node", "node_id", id, "session_id", s.ID, "err", err)
			failed++
			continue
		}
		ended++
	}
	m.log.Warn("ended the sessions of a lost node", "node_id", id, "sessions_ended", ended, "failed", failed, "reason", reason)
	return failed == 0
}

// Peers returns every node of the cluster, this one included, live or not, as read at
// the last heartbeat (placement and forwarding read their URLs and load from it).
// The slice and nodes are shared: do not change them.
func (m *Member) Peers() []*bb.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peers
}

// IsMember reports whether the node holds its membership now: joined, and its lease
// not up. A fenced node is not a member until it joins again.
func (m *Member) IsMember() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joined && m.cfg.Now().Before(m.lease)
}

// Placeable reports whether the node takes new sessions: a member that is not
// draining. Placement and /readyz read it.
func (m *Member) Placeable() bool {
	m.mu.Lock()
	draining := m.draining
	m.mu.Unlock()
	return !draining && m.IsMember()
}

// Draining reports whether the node drains (Drain, or an admin's drain it read).
func (m *Member) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining
}

// DrainRequested is closed when the node reads, at a heartbeat, that an admin set it
// draining (`browserd admin nodes drain`); the server then drains as on SIGTERM.
func (m *Member) DrainRequested() <-chan struct{} { return m.drainC }

// startDrain makes the Manager refuse creates, then reports the node draining (to
// placement and /readyz): no create is taken once the node reads as draining.
func (m *Member) startDrain() {
	m.cfg.Local.Drain()
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
}

// Drain marks the node draining, here and in the store, so that placement passes it
// by; the node goes on renewing its membership while its sessions finish. The store's
// error is returned, but the node drains all the same.
func (m *Member) Drain(ctx context.Context) error {
	m.startDrain()
	if err := m.cfg.Store.SetNodeState(ctx, m.cfg.ID, bb.NodeDraining); err != nil {
		return err
	}
	m.log.Info("node draining: no new placements", "node_id", m.cfg.ID)
	return nil
}
