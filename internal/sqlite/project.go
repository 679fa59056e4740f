package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	bb "github.com/browserd/browserd"
)

const projectColumns = `id, name, owner_id, default_timeout, concurrency, created_at, updated_at`

func scanProject(r rowScanner) (*bb.Project, error) {
	var p bb.Project
	var created, updated sql.NullInt64
	if err := r.Scan(&p.ID, &p.Name, &p.OwnerID, &p.DefaultTimeout, &p.Concurrency, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &p, nil
}

// CreateProject inserts a project; an existing id is a CodeConflict error.
func (db *DB) CreateProject(ctx context.Context, p *bb.Project) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.OwnerID, p.DefaultTimeout, p.Concurrency, millis(p.CreatedAt), millis(p.UpdatedAt))
	if isDuplicate(err) {
		return bb.Errorf(bb.CodeConflict, "project %q already exists", p.ID)
	} else if err != nil {
		return unavailable(fmt.Errorf("insert project %s: %w", p.ID, err))
	}
	return nil
}

// Project returns a project by id, or a CodeNotFound error.
func (db *DB) Project(ctx context.Context, id string) (*bb.Project, error) {
	return project(ctx, db.reads, id)
}

func project(ctx context.Context, q queryer, id string) (*bb.Project, error) {
	p, err := scanProject(q.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "project %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select project %s: %w", id, err)
	}
	return p, nil
}

// Projects returns every project, oldest first (by creation time, then id).
func (db *DB) Projects(ctx context.Context) ([]*bb.Project, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("select projects: %w", err)
	}
	defer rows.Close()
	ps := []*bb.Project{}
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("scan project: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select projects: %w", err)
	}
	return ps, nil
}

// UpdateProject reads a project, calls fn on it and writes it back, in one IMMEDIATE
// transaction. fn's error aborts the update and is returned as it is. The id can't be
// changed.
func (db *DB) UpdateProject(ctx context.Context, id string, fn func(*bb.Project) error) (*bb.Project, error) {
	var out *bb.Project
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		p, err := project(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		p.ID = id
		_, err = tx.ExecContext(ctx, `UPDATE projects SET name = ?, owner_id = ?, default_timeout = ?,
			concurrency = ?, created_at = ?, updated_at = ? WHERE id = ?`,
			p.Name, p.OwnerID, p.DefaultTimeout, p.Concurrency, millis(p.CreatedAt), millis(p.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("update project %s: %w", id, err)
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Usage sums a project's usage over all time, or returns CodeNotFound for an unknown
// project. Every session with a StartedAt counts its duration, from StartedAt to EndedAt
// (to now while it has none), rounded up to whole minutes and at least one minute: a
// session that failed to start still counts its minute, as on Browserbase, while one
// without a StartedAt (never written by the Manager) counts nothing.
func (db *DB) Usage(ctx context.Context, projectID string, now time.Time) (bb.ProjectUsage, error) {
	var u bb.ProjectUsage
	var exists bool
	// (d + 59999) / 60000 is ceil(d / 1 min) for d >= 0; MAX(1, …) also covers d < 0
	// (clock steps, or now before StartedAt).
	err := db.read.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM projects WHERE id = ?1),
		COALESCE((SELECT SUM(MAX(1, (COALESCE(ended_at, ?2) - started_at + 59999) / 60000))
			FROM sessions WHERE project_id = ?1 AND started_at IS NOT NULL), 0),
		COALESCE((SELECT SUM(proxy_bytes) FROM sessions WHERE project_id = ?1), 0)
			+ COALESCE((SELECT proxy_bytes FROM fetch_usage WHERE project_id = ?1), 0)`,
		projectID, now.UnixMilli()).Scan(&exists, &u.BrowserMinutes, &u.ProxyBytes)
	if err != nil {
		return bb.ProjectUsage{}, fmt.Errorf("sum usage of project %s: %w", projectID, err)
	}
	if !exists {
		return bb.ProjectUsage{}, bb.Errorf(bb.CodeNotFound, "project %q not found", projectID)
	}
	return u, nil
}

// AddFetchProxyBytes adds n to the bytes the project's fetches read through managed
// proxies.
func (db *DB) AddFetchProxyBytes(ctx context.Context, projectID string, n int64) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO fetch_usage (project_id, proxy_bytes) VALUES (?, ?)
		ON CONFLICT (project_id) DO UPDATE SET proxy_bytes = proxy_bytes + excluded.proxy_bytes`, projectID, n)
	if err != nil {
		return fmt.Errorf("add fetch proxy bytes of project %s: %w", projectID, err)
	}
	return nil
}

// FetchProxyBytes returns the bytes the project's fetches read through managed proxies.
func (db *DB) FetchProxyBytes(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT proxy_bytes FROM fetch_usage WHERE project_id = ?), 0)`, projectID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("fetch proxy bytes of project %s: %w", projectID, err)
	}
	return n, nil
}
