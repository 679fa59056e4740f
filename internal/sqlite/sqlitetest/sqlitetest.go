package sqlitetest

import (
	"path/filepath"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/sqlite"
)

// Open returns a migrated database in a fresh file under t.TempDir (not ":memory:",
// where each pooled connection would get its own database), closed by t.Cleanup.
func Open(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "browserd.db"), nil)
	if err != nil {
		t.Fatalf("sqlitetest.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	return db
}

// Project creates a project with the given concurrency limit (and the default timeout)
// and an API key for it, and returns the project and the raw key.
func Project(t testing.TB, db *sqlite.DB, concurrency int) (p *bb.Project, rawKey string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p = &bb.Project{
		ID:             bb.NewID(),
		Name:           "test project",
		OwnerID:        "test-owner",
		DefaultTimeout: bb.DefaultProjectTimeout,
		Concurrency:    concurrency,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("sqlitetest.Project: %v", err)
	}
	rawKey = bb.NewAPIKey()
	k := &bb.APIKey{ID: bb.NewID(), ProjectID: p.ID, Name: "test key", Hash: bb.HashAPIKey(rawKey), CreatedAt: now}
	if err := db.CreateAPIKey(t.Context(), k); err != nil {
		t.Fatalf("sqlitetest.Project: %v", err)
	}
	return p, rawKey
}
