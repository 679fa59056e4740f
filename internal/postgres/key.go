package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

const keyColumns = `id, project_id, name, hash, created_at`

func scanKey(r pgx.Row) (*bb.APIKey, error) {
	var k bb.APIKey
	var created *int64
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
	_, err := db.pool.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.ProjectID, k.Name, k.Hash, millis(k.CreatedAt))
	switch code, _ := pgCode(err); {
	case code == codeUnique:
		return bb.Errorf(bb.CodeConflict, "api key %q already exists", k.ID)
	case code == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", k.ProjectID)
	case err != nil:
		return db.classify(fmt.Errorf("insert api key %s: %w", k.ID, err))
	}
	return nil
}

// APIKeyByHash returns the key with the given SHA-256 digest, or a CodeNotFound error.
func (db *DB) APIKeyByHash(ctx context.Context, hash []byte) (*bb.APIKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "api key not found") // the hash stays out of messages
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("select api key by hash: %w", err))
	}
	return k, nil
}

// APIKeys returns the keys of a project, oldest first (by creation time, then id).
func (db *DB) APIKeys(ctx context.Context, projectID string) ([]*bb.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select api keys of project %s: %w", projectID, err))
	}
	ks, err := collect(rows, scanKey)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select api keys of project %s: %w", projectID, err))
	}
	return ks, nil
}

// SettingOrInit returns the named setting, storing init first when it is absent. The
// first writer wins, also across processes: a racing insert waits for the first one's
// commit and then does nothing, and the select that follows (a new snapshot under READ
// COMMITTED) reads the winner's value.
func (db *DB) SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error) {
	if init == nil {
		init = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, init); err != nil {
		return nil, db.classify(fmt.Errorf("insert setting %s: %w", name, err))
	}
	var val []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&val); err != nil {
		return nil, db.classify(fmt.Errorf("select setting %s: %w", name, err))
	}
	if val == nil {
		val = []byte{}
	}
	return val, nil
}
