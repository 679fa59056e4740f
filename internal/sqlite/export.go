package sqlite

import (
	"context"
	"fmt"

	bb "github.com/browserd/browserd"
)

// The listings below read whole tables, for `browserd admin migrate`, which copies a
// SQLite database into PostgreSQL; the server never needs them.

// Settings returns every server-wide setting (signing secret, snapshot key, default
// project, owner).
func (db *DB) Settings(ctx context.Context) (map[string][]byte, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, value FROM settings ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("select settings: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("select settings: %w", err)
		}
		out[name] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select settings: %w", err)
	}
	return out, nil
}

// Contexts returns every context of every project, oldest first (by creation time,
// then id).
func (db *DB) Contexts(ctx context.Context) ([]*bb.Context, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+contextColumns+` FROM contexts ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("select contexts: %w", err)
	}
	defer rows.Close()
	out := []*bb.Context{}
	for rows.Next() {
		c, err := scanContext(rows)
		if err != nil {
			return nil, fmt.Errorf("select contexts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select contexts: %w", err)
	}
	return out, nil
}

// Extensions returns every extension of every project, oldest first (by creation
// time, then id).
func (db *DB) Extensions(ctx context.Context) ([]*bb.Extension, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+extensionColumns+` FROM extensions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("select extensions: %w", err)
	}
	defer rows.Close()
	out := []*bb.Extension{}
	for rows.Next() {
		e, err := scanExtension(rows)
		if err != nil {
			return nil, fmt.Errorf("select extensions: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select extensions: %w", err)
	}
	return out, nil
}
