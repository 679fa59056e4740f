package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	bb "github.com/browserd/browserd"
)

const extensionColumns = `id, project_id, file_name, created_at, updated_at, blob, size`

func scanExtension(r rowScanner) (*bb.Extension, error) {
	var e bb.Extension
	var created, updated sql.NullInt64
	if err := r.Scan(&e.ID, &e.ProjectID, &e.FileName, &created, &updated, &e.Blob, &e.Size); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &e, nil
}

// CreateExtension inserts an extension; an existing id is a CodeConflict error.
func (db *DB) CreateExtension(ctx context.Context, e *bb.Extension) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO extensions (`+extensionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.ProjectID, e.FileName, millis(e.CreatedAt), millis(e.UpdatedAt), e.Blob, e.Size)
	switch {
	case isDuplicate(err):
		return bb.Errorf(bb.CodeConflict, "extension %q already exists", e.ID)
	case errorCode(err) == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", e.ProjectID)
	case err != nil:
		return unavailable(fmt.Errorf("insert extension %s: %w", e.ID, err))
	}
	return nil
}

// Extension returns an extension by id, or a CodeNotFound error.
func (db *DB) Extension(ctx context.Context, id string) (*bb.Extension, error) {
	return getExtension(ctx, db.reads, id)
}

func getExtension(ctx context.Context, q queryer, id string) (*bb.Extension, error) {
	e, err := scanExtension(q.QueryRowContext(ctx, `SELECT `+extensionColumns+` FROM extensions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "extension %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select extension %s: %w", id, err)
	}
	return e, nil
}

// DeleteExtension deletes an extension and returns it as it was, or CodeNotFound.
func (db *DB) DeleteExtension(ctx context.Context, id string) (*bb.Extension, error) {
	var out *bb.Extension
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		e, err := getExtension(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM extensions WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete extension %s: %w", id, err)
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
