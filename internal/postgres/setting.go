package postgres

import (
	"context"
	"fmt"
)

// SetSetting stores a setting, replacing its value. SettingOrInit makes settings once;
// this replaces one that must change while the cluster runs: the cluster secret, which
// `browserd admin cluster rotate-secret` rotates (internal/cluster).
func (db *DB) SetSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value); err != nil {
		return db.classify(fmt.Errorf("set setting %s: %w", name, err))
	}
	return nil
}
