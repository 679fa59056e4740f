package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

var _ bb.NodeStore = (*DB)(nil)

// nodeColumns are the columns of nodes in the order scanNode reads them.
const nodeColumns = `id, url, state, capacity, live, warm, version, started_at, heartbeat_at`

// dbNow is the database's clock in Unix milliseconds: membership never trusts a node's
// clock (bb.NodeStore). now() is the start of the statement's transaction, which for
// these single statements is the statement's own start.
const dbNow = `(floor(extract(epoch FROM now()) * 1000))::bigint`

// liveNodeStates is the SQL list of the states bb.NodeState.Live accepts.
const liveNodeStates = `('` + string(bb.NodeActive) + `', '` + string(bb.NodeDraining) + `')`

// scanNode reads a row of nodeColumns.
func scanNode(r pgx.Row) (*bb.Node, error) {
	var n bb.Node
	var state string
	var started, heartbeat int64
	if err := r.Scan(&n.ID, &n.URL, &state, &n.Capacity, &n.Live, &n.Warm, &n.Version, &started, &heartbeat); err != nil {
		return nil, err
	}
	n.State = bb.NodeState(state)
	n.StartedAt, n.HeartbeatAt = time.UnixMilli(started).UTC(), time.UnixMilli(heartbeat).UTC()
	if len(n.Warm) == 0 {
		n.Warm = nil
	}
	return &n, nil
}

// warmArray stores nil as the empty array: the column is NOT NULL.
func warmArray(warm []string) []string {
	if warm == nil {
		return []string{}
	}
	out := make([]string, len(warm))
	for i, k := range warm {
		out[i] = text(k)
	}
	return out
}

// JoinNode records n as active with the database's time as its start and heartbeat,
// replacing any earlier row of n.ID (a restarted or fenced node joins again as a new
// member). n's State, StartedAt and HeartbeatAt are set to what was stored.
func (db *DB) JoinNode(ctx context.Context, n *bb.Node) error {
	if n.ID == "" {
		return bb.Errorf(bb.CodeInvalid, "a node needs an id")
	}
	row := db.pool.QueryRow(ctx, `INSERT INTO nodes (`+nodeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, `+dbNow+`, `+dbNow+`)
		ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, state = EXCLUDED.state,
			capacity = EXCLUDED.capacity, live = EXCLUDED.live, warm = EXCLUDED.warm,
			version = EXCLUDED.version, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
		RETURNING `+nodeColumns,
		n.ID, text(n.URL), string(bb.NodeActive), n.Capacity, n.Live, warmArray(n.Warm), text(n.Version))
	stored, err := scanNode(row)
	if err != nil {
		return db.classify(fmt.Errorf("join node %s: %w", n.ID, err))
	}
	n.State, n.StartedAt, n.HeartbeatAt = stored.State, stored.StartedAt, stored.HeartbeatAt
	return nil
}

// Heartbeat renews a live node's membership with its load and returns its row, in
// whatever state an admin set (draining). A node that is not live, or has no row,
// gets bb.ErrNodeNotMember: the row is only renewed while live, in one statement, so
// a heartbeat can never revive a node a peer has just marked lost.
func (db *DB) Heartbeat(ctx context.Context, id string, live int, warm []string) (*bb.Node, error) {
	row := db.pool.QueryRow(ctx, `UPDATE nodes SET heartbeat_at = `+dbNow+`, live = $2, warm = $3
		WHERE id = $1 AND state IN `+liveNodeStates+` RETURNING `+nodeColumns, id, live, warmArray(warm))
	n, err := scanNode(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.ErrNodeNotMember
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("heartbeat of node %s: %w", id, err))
	}
	return n, nil
}

// Nodes returns every node the store knows, live or not, by id.
func (db *DB) Nodes(ctx context.Context) ([]*bb.Node, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+nodeColumns+` FROM nodes ORDER BY id`)
	if err != nil {
		return nil, db.classify(fmt.Errorf("list nodes: %w", err))
	}
	out, err := collect(rows, scanNode)
	if err != nil {
		return nil, db.classify(fmt.Errorf("list nodes: %w", err))
	}
	return out, nil
}

// SetNodeState moves a node to state, or returns a CodeNotFound error. Only a live
// node can become active or draining (a CodeConflict error otherwise): a node marked
// lost has had its sessions ended and comes back only by joining again. An unknown
// state is a CodeInvalid error.
func (db *DB) SetNodeState(ctx context.Context, id string, state bb.NodeState) error {
	switch state {
	case bb.NodeActive, bb.NodeDraining, bb.NodeLeft, bb.NodeLost:
	default:
		return bb.Errorf(bb.CodeInvalid, "unknown node state %q", state)
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT state FROM nodes WHERE id = $1 FOR UPDATE`, id).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return bb.Errorf(bb.CodeNotFound, "node %q not found", id)
		} else if err != nil {
			return fmt.Errorf("set node %s %s: %w", id, state, err)
		}
		if (state == bb.NodeActive || state == bb.NodeDraining) && !bb.NodeState(old).Live() {
			return bb.Errorf(bb.CodeConflict, "node %q is %s, not live: it comes back only by joining again", id, old)
		}
		if _, err := tx.Exec(ctx, `UPDATE nodes SET state = $2 WHERE id = $1`, id, string(state)); err != nil {
			return fmt.Errorf("set node %s %s: %w", id, state, err)
		}
		return nil
	})
}

// ExpireNodes marks lost every live node whose heartbeat is older than ttl by the
// database's clock, and returns them as they now are. It is one UPDATE … RETURNING:
// under READ COMMITTED a second caller racing for the same row waits for the first's
// row lock, re-reads the row, finds it no longer live and skips it, so exactly one
// caller gets each node.
func (db *DB) ExpireNodes(ctx context.Context, ttl time.Duration) ([]*bb.Node, error) {
	rows, err := db.pool.Query(ctx, `UPDATE nodes SET state = $1
		WHERE state IN `+liveNodeStates+` AND heartbeat_at < `+dbNow+` - $2
		RETURNING `+nodeColumns, string(bb.NodeLost), ttl.Milliseconds())
	if err != nil {
		return nil, db.classify(fmt.Errorf("expire nodes: %w", err))
	}
	out, err := collect(rows, scanNode)
	if err != nil {
		return nil, db.classify(fmt.Errorf("expire nodes: %w", err))
	}
	return out, nil
}

// PruneNodes deletes the nodes that left or were lost whose last heartbeat is older than
// olderThan by the database's clock.
func (db *DB) PruneNodes(ctx context.Context, olderThan time.Duration) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM nodes WHERE state IN ($1, $2) AND heartbeat_at < `+dbNow+` - $3`,
		string(bb.NodeLeft), string(bb.NodeLost), olderThan.Milliseconds())
	if err != nil {
		return 0, db.classify(fmt.Errorf("prune nodes: %w", err))
	}
	return int(tag.RowsAffected()), nil
}
