package sqlite

import (
	"context"
	"fmt"
)

// ProjectStorageBytes returns the bytes of a project's extensions and context snapshots,
// for its disk quota (internal/profiles: Config.ProjectMax).
func (db *DB) ProjectStorageBytes(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT SUM(size) FROM extensions WHERE project_id = ?), 0) +
		COALESCE((SELECT SUM(snapshot_size) FROM contexts WHERE project_id = ?), 0)`, projectID, projectID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sum storage of project %s: %w", projectID, err)
	}
	return n, nil
}
