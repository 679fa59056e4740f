package postgres_test

import (
	"testing"

	"github.com/browserd/browserd/internal/postgres/pgtest"
)

// TestSetSetting: SetSetting replaces a setting SettingOrInit made (and makes a missing
// one), and every connection reads the new value.
func TestSetSetting(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	db, other := open(t, url), open(t, url)
	ctx := t.Context()
	if v, err := db.SettingOrInit(ctx, "cluster-secret", []byte("first")); err != nil || string(v) != "first" {
		t.Fatalf("SettingOrInit = %q, %v", v, err)
	}
	if err := db.SetSetting(ctx, "cluster-secret", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if v, err := other.SettingOrInit(ctx, "cluster-secret", []byte("ignored")); err != nil || string(v) != "second" {
		t.Errorf("after SetSetting, SettingOrInit = %q, %v; want second", v, err)
	}
	if err := db.SetSetting(ctx, "new", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := other.SettingOrInit(ctx, "new", []byte("ignored")); err != nil || len(v) != 0 {
		t.Errorf("a setting set to nil reads %q, %v; want empty", v, err)
	}
}
