package sqlite

import (
	"context"
	"fmt"
)

// SetSetting stores a setting, replacing its value. SettingOrInit makes settings once;
// this replaces one that changes while the server runs (a dashboard sign-out's time).
func (db *DB) SetSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("set setting %s: %w", name, err)
	}
	return nil
}
