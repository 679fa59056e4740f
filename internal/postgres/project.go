package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

const projectColumns = `id, name, owner_id, default_timeout, concurrency, created_at, updated_at`

func scanProject(r pgx.Row) (*bb.Project, error) {
	var p bb.Project
	var created, updated *int64
	if err := r.Scan(&p.ID, &p.Name, &p.OwnerID, &p.DefaultTimeout, &p.Concurrency, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &p, nil
}

// CreateProject inserts a project; an existing id is a CodeConflict error.
func (db *DB) CreateProject(ctx context.Context, p *bb.Project) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.ID, p.Name, p.OwnerID, p.DefaultTimeout, p.Concurrency, millis(p.CreatedAt), millis(p.UpdatedAt))
	if code, _ := pgCode(err); code == codeUnique {
		return bb.Errorf(bb.CodeConflict, "project %q already exists", p.ID)
	} else if err != nil {
		return db.classify(fmt.Errorf("insert project %s: %w", p.ID, err))
	}
	return nil
}

// Project returns a project by id, or a CodeNotFound error.
func (db *DB) Project(ctx context.Context, id string) (*bb.Project, error) {
	p, err := project(ctx, db.pool, id, "")
	return p, db.classify(err)
}

// project reads a project; lock is "" or a locking clause (FOR UPDATE).
func project(ctx context.Context, q querier, id, lock string) (*bb.Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "project %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select project %s: %w", id, err)
	}
	return p, nil
}

// Projects returns every project, oldest first (by creation time, then id).
func (db *DB) Projects(ctx context.Context) ([]*bb.Project, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select projects: %w", err))
	}
	ps, err := collect(rows, scanProject)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select projects: %w", err))
	}
	return ps, nil
}

// collect scans every row with scan into a non-nil slice, and closes rows.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// UpdateProject reads a project (locking its row), calls fn on it and writes it back,
// in one transaction. fn's error aborts the update and is returned as it is. The id
// can't be changed.
func (db *DB) UpdateProject(ctx context.Context, id string, fn func(*bb.Project) error) (*bb.Project, error) {
	var out *bb.Project
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		p, err := project(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		p.ID = id
		_, err = tx.Exec(ctx, `UPDATE projects SET name = $1, owner_id = $2, default_timeout = $3,
			concurrency = $4, created_at = $5, updated_at = $6 WHERE id = $7`,
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
// project, with internal/sqlite's arithmetic: every session with a StartedAt counts its
// duration, from StartedAt to EndedAt (to now while it has none), rounded up to whole
// minutes and at least one minute.
func (db *DB) Usage(ctx context.Context, projectID string, now time.Time) (bb.ProjectUsage, error) {
	var u bb.ProjectUsage
	var exists bool
	// (d + 59999) / 60000 is ceil(d / 1 min) for d >= 0 (BIGINT division truncates, as
	// SQLite's); GREATEST(1, …) also covers d < 0.
	err := db.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM projects WHERE id = $1),
		COALESCE((SELECT SUM(GREATEST(1, (COALESCE(ended_at, $2) - started_at + 59999) / 60000))
			FROM sessions WHERE project_id = $1 AND started_at IS NOT NULL), 0)::BIGINT,
		(COALESCE((SELECT SUM(proxy_bytes) FROM sessions WHERE project_id = $1), 0)
			+ COALESCE((SELECT proxy_bytes FROM fetch_usage WHERE project_id = $1), 0))::BIGINT`,
		projectID, now.UnixMilli()).Scan(&exists, &u.BrowserMinutes, &u.ProxyBytes)
	if err != nil {
		return bb.ProjectUsage{}, db.classify(fmt.Errorf("sum usage of project %s: %w", projectID, err))
	}
	if !exists {
		return bb.ProjectUsage{}, bb.Errorf(bb.CodeNotFound, "project %q not found", projectID)
	}
	return u, nil
}

// AddFetchProxyBytes adds n to the bytes the project's fetches read through managed
// proxies.
func (db *DB) AddFetchProxyBytes(ctx context.Context, projectID string, n int64) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO fetch_usage (project_id, proxy_bytes) VALUES ($1, $2)
		ON CONFLICT (project_id) DO UPDATE SET proxy_bytes = fetch_usage.proxy_bytes + EXCLUDED.proxy_bytes`, text(projectID), n)
	if err != nil {
		return db.classify(fmt.Errorf("add fetch proxy bytes of project %s: %w", projectID, err))
	}
	return nil
}

// FetchProxyBytes returns the bytes the project's fetches read through managed proxies.
func (db *DB) FetchProxyBytes(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT COALESCE((SELECT proxy_bytes FROM fetch_usage WHERE project_id = $1), 0)`, text(projectID)).Scan(&n)
	if err != nil {
		return 0, db.classify(fmt.Errorf("fetch proxy bytes of project %s: %w", projectID, err))
	}
	return n, nil
}
