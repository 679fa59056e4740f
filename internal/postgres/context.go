package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

const contextColumns = `id, project_id, name, created_at, updated_at, snapshot, snapshot_size, snapshot_at`

// contextNameIndex is the unique index on (project_id, name_key) of migration 0001.
const contextNameIndex = "contexts_project_name"

func scanContext(r pgx.Row) (*bb.Context, error) {
	var c bb.Context
	var created, updated, snapAt *int64
	if err := r.Scan(&c.ID, &c.ProjectID, &c.Name, &created, &updated, &c.Snapshot, &c.SnapshotSize, &snapAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.SnapshotAt = fromMillis(created), fromMillis(updated), fromMillis(snapAt)
	return &c, nil
}

// nameKey is the unique name_key column: NULL for an unnamed context.
func nameKey(name string) *string {
	k := bb.ContextNameKey(name)
	if k == "" {
		return nil
	}
	return &k
}

// CreateContext inserts a context. A name already used in the project (ignoring case
// and surrounding space) is bb.DuplicateContextNameError, also when another process
// inserts it at the same time (the unique index decides); an existing id CodeConflict.
func (db *DB) CreateContext(ctx context.Context, c *bb.Context) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO contexts (`+contextColumns+`, name_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.ProjectID, c.Name, millis(c.CreatedAt), millis(c.UpdatedAt), c.Snapshot, c.SnapshotSize,
		millis(c.SnapshotAt), nameKey(c.Name))
	switch code, constraint := pgCode(err); {
	case code == codeUnique && constraint == contextNameIndex:
		return bb.DuplicateContextNameError(c.Name)
	case code == codeUnique:
		return bb.Errorf(bb.CodeConflict, "context %q already exists", c.ID)
	case code == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", c.ProjectID)
	case err != nil:
		return db.classify(fmt.Errorf("insert context %s: %w", c.ID, err))
	}
	return nil
}

// Context returns a context by id, or a CodeNotFound error.
func (db *DB) Context(ctx context.Context, id string) (*bb.Context, error) {
	c, err := getContext(ctx, db.pool, id, "")
	return c, db.classify(err)
}

// getContext reads a context; lock is "" or a locking clause (FOR UPDATE).
func getContext(ctx context.Context, q querier, id, lock string) (*bb.Context, error) {
	c, err := scanContext(q.QueryRow(ctx, `SELECT `+contextColumns+` FROM contexts WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "context %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select context %s: %w", id, err)
	}
	return c, nil
}

// UpdateContext reads a context (locking its row), calls fn on it and writes it back,
// in one transaction. fn's error aborts the update and is returned as it is. The id and
// project can't be changed; a new name that clashes is bb.DuplicateContextNameError.
func (db *DB) UpdateContext(ctx context.Context, id string, fn func(*bb.Context) error) (*bb.Context, error) {
	var out *bb.Context
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		c, err := getContext(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		projectID := c.ProjectID
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.ProjectID = id, projectID
		_, err = tx.Exec(ctx, `UPDATE contexts SET name = $1, name_key = $2, created_at = $3, updated_at = $4,
			snapshot = $5, snapshot_size = $6, snapshot_at = $7 WHERE id = $8`,
			c.Name, nameKey(c.Name), millis(c.CreatedAt), millis(c.UpdatedAt), c.Snapshot, c.SnapshotSize,
			millis(c.SnapshotAt), id)
		if code, _ := pgCode(err); code == codeUnique {
			return bb.DuplicateContextNameError(c.Name)
		} else if err != nil {
			return fmt.Errorf("update context %s: %w", id, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteContext deletes a context and returns it as it was, or CodeNotFound.
func (db *DB) DeleteContext(ctx context.Context, id string) (*bb.Context, error) {
	c, err := scanContext(db.pool.QueryRow(ctx, `DELETE FROM contexts WHERE id = $1 RETURNING `+contextColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "context %q not found", id)
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("delete context %s: %w", id, err))
	}
	return c, nil
}

const extensionColumns = `id, project_id, file_name, created_at, updated_at, blob, size`

func scanExtension(r pgx.Row) (*bb.Extension, error) {
	var e bb.Extension
	var created, updated *int64
	if err := r.Scan(&e.ID, &e.ProjectID, &e.FileName, &created, &updated, &e.Blob, &e.Size); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &e, nil
}

// CreateExtension inserts an extension; an existing id is a CodeConflict error.
func (db *DB) CreateExtension(ctx context.Context, e *bb.Extension) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO extensions (`+extensionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.ProjectID, e.FileName, millis(e.CreatedAt), millis(e.UpdatedAt), e.Blob, e.Size)
	switch code, _ := pgCode(err); {
	case code == codeUnique:
		return bb.Errorf(bb.CodeConflict, "extension %q already exists", e.ID)
	case code == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", e.ProjectID)
	case err != nil:
		return db.classify(fmt.Errorf("insert extension %s: %w", e.ID, err))
	}
	return nil
}

// Extension returns an extension by id, or a CodeNotFound error.
func (db *DB) Extension(ctx context.Context, id string) (*bb.Extension, error) {
	e, err := scanExtension(db.pool.QueryRow(ctx, `SELECT `+extensionColumns+` FROM extensions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "extension %q not found", id)
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("select extension %s: %w", id, err))
	}
	return e, nil
}

// DeleteExtension deletes an extension and returns it as it was, or CodeNotFound.
func (db *DB) DeleteExtension(ctx context.Context, id string) (*bb.Extension, error) {
	e, err := scanExtension(db.pool.QueryRow(ctx, `DELETE FROM extensions WHERE id = $1 RETURNING `+extensionColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "extension %q not found", id)
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("delete extension %s: %w", id, err))
	}
	return e, nil
}

// ProjectStorageBytes returns the bytes of a project's extensions and context snapshots,
// for its disk quota (internal/profiles: Config.ProjectMax).
func (db *DB) ProjectStorageBytes(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT
		(COALESCE((SELECT SUM(size) FROM extensions WHERE project_id = $1), 0) +
		COALESCE((SELECT SUM(snapshot_size) FROM contexts WHERE project_id = $1), 0))::BIGINT`, projectID).Scan(&n)
	if err != nil {
		return 0, db.classify(fmt.Errorf("sum storage of project %s: %w", projectID, err))
	}
	return n, nil
}
