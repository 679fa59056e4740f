package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	bb "github.com/browserd/browserd"
)

// SessionCounts returns how many sessions each project has in each status, for the
// metrics (internal/metrics). It scans the sessions table: a few milliseconds per
// hundred thousand sessions, once per scrape.
func (db *DB) SessionCounts(ctx context.Context) ([]bb.SessionCount, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT project_id, status, COUNT(*) FROM sessions GROUP BY project_id, status ORDER BY project_id, status`)
	if err != nil {
		return nil, fmt.Errorf("count sessions: %w", err)
	}
	defer rows.Close()
	var out []bb.SessionCount
	for rows.Next() {
		var c bb.SessionCount
		var status string
		if err := rows.Scan(&c.ProjectID, &status, &c.N); err != nil {
			return nil, fmt.Errorf("count sessions: %w", err)
		}
		c.Status = bb.SessionStatus(status)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count sessions: %w", err)
	}
	return out, nil
}

// Ping checks that the database answers a query on both its read and write
// connections, for the readiness probe.
func (db *DB) Ping(ctx context.Context) error {
	for _, c := range []*sql.DB{db.read, db.write} {
		var one int
		if err := c.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			return fmt.Errorf("ping database: %w", err)
		}
	}
	return nil
}
