package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

// SessionCounts returns how many sessions each project has in each status, for the
// metrics (internal/metrics).
func (db *DB) SessionCounts(ctx context.Context) ([]bb.SessionCount, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT project_id, status, COUNT(*) FROM sessions GROUP BY project_id, status ORDER BY project_id, status`)
	if err != nil {
		return nil, db.classify(fmt.Errorf("count sessions: %w", err))
	}
	out, err := collect(rows, func(r pgx.Row) (bb.SessionCount, error) {
		var c bb.SessionCount
		var status string
		err := r.Scan(&c.ProjectID, &status, &c.N)
		c.Status = bb.SessionStatus(status)
		return c, err
	})
	if err != nil {
		return nil, db.classify(fmt.Errorf("count sessions: %w", err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Ping checks that the database answers a query, for the readiness probe.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return db.classify(fmt.Errorf("ping database: %w", err))
	}
	return nil
}
