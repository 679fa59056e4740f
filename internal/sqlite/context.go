package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	bb "github.com/browserd/browserd"
)

const contextColumns = `id, project_id, name, created_at, updated_at, snapshot, snapshot_size, snapshot_at`

func scanContext(r rowScanner) (*bb.Context, error) {
	var c bb.Context
	var created, updated, snapAt sql.NullInt64
	if err := r.Scan(&c.ID, &c.ProjectID, &c.Name, &created, &updated, &c.Snapshot, &c.SnapshotSize, &snapAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.SnapshotAt = fromMillis(created), fromMillis(updated), fromMillis(snapAt)
	return &c, nil
}

// nameKey is the unique name_key column: NULL for an unnamed context.
func nameKey(name string) sql.NullString {
	k := bb.ContextNameKey(name)
	return sql.NullString{String: k, Valid: k != ""}
}

// CreateContext inserts a context. A name already used in the project (ignoring case
// and surrounding space) is bb.DuplicateContextNameError; an existing id CodeConflict.
func (db *DB) CreateContext(ctx context.Context, c *bb.Context) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO contexts (`+contextColumns+`, name_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProjectID, c.Name, millis(c.CreatedAt), millis(c.UpdatedAt), c.Snapshot, c.SnapshotSize,
		millis(c.SnapshotAt), nameKey(c.Name))
	switch {
	case errorCode(err) == codeUnique:
		return bb.DuplicateContextNameError(c.Name)
	case errorCode(err) == codePrimaryKey:
		return bb.Errorf(bb.CodeConflict, "context %q already exists", c.ID)
	case errorCode(err) == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", c.ProjectID)
	case err != nil:
		return unavailable(fmt.Errorf("insert context %s: %w", c.ID, err))
	}
	return nil
}

// Context returns a context by id, or a CodeNotFound error.
func (db *DB) Context(ctx context.Context, id string) (*bb.Context, error) {
	return getContext(ctx, db.reads, id)
}

func getContext(ctx context.Context, q queryer, id string) (*bb.Context, error) {
	c, err := scanContext(q.QueryRowContext(ctx, `SELECT `+contextColumns+` FROM contexts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "context %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select context %s: %w", id, err)
	}
	return c, nil
}

// UpdateContext reads a context, calls fn on it and writes it back, in one IMMEDIATE
// transaction. fn's error aborts the update and is returned as it is. The id and
// project can't be changed; a new name that clashes is bb.DuplicateContextNameError.
func (db *DB) UpdateContext(ctx context.Context, id string, fn func(*bb.Context) error) (*bb.Context, error) {
	var out *bb.Context
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := getContext(ctx, tx, id)
		if err != nil {
			return err
		}
		projectID := c.ProjectID
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.ProjectID = id, projectID
		_, err = tx.ExecContext(ctx, `UPDATE contexts SET name = ?, name_key = ?, created_at = ?, updated_at = ?,
			snapshot = ?, snapshot_size = ?, snapshot_at = ? WHERE id = ?`,
			c.Name, nameKey(c.Name), millis(c.CreatedAt), millis(c.UpdatedAt), c.Snapshot, c.SnapshotSize,
			millis(c.SnapshotAt), id)
		if errorCode(err) == codeUnique {
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
	var out *bb.Context
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := getContext(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM contexts WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete context %s: %w", id, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
