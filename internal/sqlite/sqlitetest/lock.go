package sqlitetest

import (
	"context"
	"database/sql"
	"sync"
	"testing"
)

// LockWrites takes the write lock of the SQLite database at path from a connection of
// its own (BEGIN IMMEDIATE), as a long admin transaction or another process would, so
// that the store's writes wait and then fail busy. unlock commits and lets them through;
// it is idempotent, and cleanup does it too.
func LockWrites(t testing.TB, path string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
				t.Errorf("release the write lock: %v", err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}
