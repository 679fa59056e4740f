package browserd

import (
	"context"
	"errors"
	"time"
)

// A cluster is several browserd nodes sharing one PostgreSQL database and one blob store
// (docs/ARCHITECTURE.md "Cluster"). Each node runs its own sessions' browsers; the
// database says which node owns a session (Session.NodeID) and which nodes are alive
// (Node). Any node answers any request: one that does not own the session forwards it.

// NodeState is where a node is in its life in the cluster.
type NodeState string

const (
	// NodeActive takes placements and serves its sessions.
	NodeActive NodeState = "active"
	// NodeDraining serves its sessions but takes no new ones (SIGTERM, `admin nodes drain`).
	NodeDraining NodeState = "draining"
	// NodeLeft ended its sessions and stopped in order.
	NodeLeft NodeState = "left"
	// NodeLost stopped renewing its membership; a survivor ended its sessions (ERROR).
	NodeLost NodeState = "lost"
)

// Live reports whether a node in this state may still run browsers.
func (s NodeState) Live() bool { return s == NodeActive || s == NodeDraining }

// Node is one member of a cluster as the store keeps it.
type Node struct {
	ID string
	// URL is how its peers reach it (--cluster-url), e.g. http://10.0.3.7:8080.
	URL   string
	State NodeState
	// Capacity is its --max-sessions; Live the sessions it ran at its last heartbeat.
	Capacity int
	Live     int
	// Warm lists the launch keys it has a ready warm browser for (placement prefers a
	// node that can serve a create warm); "" is the default shelf.
	Warm    []string
	Version string
	// StartedAt, HeartbeatAt are the store's clock, never a node's.
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// NodeStore keeps the members of a cluster. Times are the store's clock, so that nodes
// whose clocks disagree still agree on who is late. internal/postgres implements it;
// SQLite does not (a cluster needs a shared database).
type NodeStore interface {
	// JoinNode records n as NodeActive with a heartbeat now, replacing an earlier row of
	// the same id (a restarted node joins again).
	JoinNode(ctx context.Context, n *Node) error
	// Heartbeat renews a node's membership with its load and returns the row as stored,
	// so that a node learns an admin's drain (State NodeDraining). A node that is no
	// longer live (marked lost or left) gets ErrNodeNotMember and must not go on.
	Heartbeat(ctx context.Context, id string, live int, warm []string) (*Node, error)
	// Nodes returns every node the store knows, live or not, by id.
	Nodes(ctx context.Context) ([]*Node, error)
	// SetNodeState moves a node to state; CodeNotFound when there is no such node.
	// Only a live node becomes active or draining (CodeConflict otherwise): a lost node
	// had its sessions ended, and comes back only by joining again.
	SetNodeState(ctx context.Context, id string, state NodeState) error
	// ExpireNodes marks NodeLost every live node whose heartbeat is older than ttl and
	// returns them: exactly one caller gets each node, even when several run at once.
	ExpireNodes(ctx context.Context, ttl time.Duration) ([]*Node, error)
	// PruneNodes deletes the nodes that left or were lost more than olderThan ago (by
	// their last heartbeat) and returns how many: nodes with a fresh data dir each start
	// (Kubernetes pods) would otherwise pile up rows. A pruned node that comes back
	// finds itself no member (ErrNodeNotMember) and joins again.
	PruneNodes(ctx context.Context, olderThan time.Duration) (int, error)
}

// ErrNodeNotMember is Heartbeat's answer to a node the cluster no longer counts as live.
var ErrNodeNotMember = errors.New("this node is no longer a member of the cluster")
