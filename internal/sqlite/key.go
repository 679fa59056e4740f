package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	bb "github.com/browserd/browserd"
)

const keyColumns = `id, project_id, name, hash, created_at`

func scanKey(r rowScanner) (*bb.APIKey, error) {
	var k bb.APIKey
	var created sql.NullInt64
	if err := r.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Hash, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMillis(created)
	return &k, nil
}

// CreateAPIKey inserts an API key. An unknown project is a CodeNotFound error; an
// existing id or hash a CodeConflict one.
func (db *DB) CreateAPIKey(ctx context.Context, k *bb.APIKey) error {
	if len(k.Hash) == 0 {
		return bb.Errorf(bb.CodeInvalid, "api key %q has no hash", k.ID)
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.ProjectID, k.Name, k.Hash, millis(k.CreatedAt))
	switch {
	case isDuplicate(err):
		return bb.Errorf(bb.CodeConflict, "api key %q already exists", k.ID)
	case errorCode(err) == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", k.ProjectID)
	case err != nil:
		return unavailable(fmt.Errorf("insert api key %s: %w", k.ID, err))
	}
	return nil
}

// APIKeyByHash returns the key with the given SHA-256 digest, or a CodeNotFound error.
func (db *DB) APIKeyByHash(ctx context.Context, hash []byte) (*bb.APIKey, error) {
	k, err := scanKey(db.reads.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "api key not found") // the hash stays out of messages
	} else if err != nil {
		return nil, fmt.Errorf("select api key by hash: %w", err)
	}
	return k, nil
}

// APIKeys returns the keys of a project, oldest first (by creation time, then id).
func (db *DB) APIKeys(ctx context.Context, projectID string) ([]*bb.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("select api keys of project %s: %w", projectID, err)
	}
	defer rows.Close()
	ks := []*bb.APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("scan api key: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select api keys of project %s: %w", projectID, err)
	}
	return ks, nil
}

// SettingOrInit returns the named setting, storing init first when it is absent. The
// first writer wins, also across processes sharing the file.
func (db *DB) SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error) {
	if init == nil {
		init = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	var val []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, name, init); err != nil {
			return fmt.Errorf("insert setting %s: %w", name, err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&val); err != nil {
			return fmt.Errorf("select setting %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return val, nil
}
