package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"github.com/browserd/browserd/internal/storetest"

	_ "modernc.org/sqlite" // the driver, to inspect the file directly
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bb.Store { return sqlitetest.Open(t) })
}

// TestReopen checks that migrations are idempotent and that data survives a reopen.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "browserd.db")
	db, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	p := &bb.Project{ID: bb.NewID(), Name: "p", DefaultTimeout: 300, Concurrency: 2,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	secret, err := db.SettingOrInit(t.Context(), "secret", []byte("s3cret"))
	if err != nil {
		t.Fatalf("SettingOrInit: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for i := range 2 {
		db, err := sqlite.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		got, err := db.Project(t.Context(), p.ID)
		if err != nil {
			t.Fatalf("Project after reopen: %v", err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("Project after reopen (-want +got):\n%s", diff)
		}
		s, err := db.SettingOrInit(t.Context(), "secret", []byte("other"))
		if err != nil {
			t.Fatalf("SettingOrInit after reopen: %v", err)
		}
		if diff := cmp.Diff(secret, s); diff != "" {
			t.Errorf("setting after reopen (-want +got):\n%s", diff)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer raw.Close()
	var versions, mode string
	if err := raw.QueryRow(`SELECT group_concat(version) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	var want []string
	for _, f := range files { // Glob sorts; NNNN_ names sort by number
		n, _, _ := strings.Cut(filepath.Base(f), "_")
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		want = append(want, strconv.Itoa(v))
	}
	if versions != strings.Join(want, ",") {
		t.Errorf("schema_migrations versions = %q; want %q (each applied once)", versions, strings.Join(want, ","))
	}
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatalf("read journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q; want wal", mode)
	}
}

// TestConcurrentOpen checks that processes (here: DBs) opening a new file at once apply
// each migration once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "browserd.db")
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() { // exits after one Open and Close; drained below
			db, err := sqlite.Open(t.Context(), path, nil)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
}

// TestTwoWriters checks the concurrency limit across two DBs on one file, as with a
// server and an admin command: their transactions must not interleave.
func TestTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "browserd.db")
	var dbs [2]*sqlite.DB
	for i := range dbs {
		db, err := sqlite.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		dbs[i] = db
	}
	const racers, limit = 20, 3
	p, _ := sqlitetest.Project(t, dbs[0], limit)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			now := time.Now().UTC().Truncate(time.Millisecond)
			s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusPending, CreatedAt: now, StartedAt: now}
			errs[i] = dbs[i%2].CreateSession(t.Context(), s, limit)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case bb.CodeOf(err) != bb.CodeLimit:
			t.Errorf("CreateSession = %v; want nil or a %q error", err, bb.CodeLimit)
		}
	}
	if ok != limit {
		t.Errorf("%d of %d creates through two DBs succeeded; want %d", ok, racers, limit)
	}
}

func TestOpenInvalidPath(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"empty", ""},
		{"memory", ":memory:"},
		{"query", filepath.Join(t.TempDir(), "x.db?_pragma=query_only(1)")},
		{"missing directory", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tt.path, nil)
			if err == nil {
				_ = db.Close() // the test fails anyway
				t.Fatalf("Open(%q) succeeded; want an error", tt.path)
			}
		})
	}
}

func TestSqlitetestProject(t *testing.T) {
	db := sqlitetest.Open(t)
	p, raw := sqlitetest.Project(t, db, 3)
	k, err := db.APIKeyByHash(t.Context(), bb.HashAPIKey(raw))
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if k.ProjectID != p.ID || p.Concurrency != 3 {
		t.Errorf("key project %s, concurrency %d; want %s, 3", k.ProjectID, p.Concurrency, p.ID)
	}
}

// TestWriteWhileLocked: a write that cannot get the lock another process holds (an admin
// transaction, here a raw connection's BEGIN IMMEDIATE) past the busy timeout is a 503 the
// client should retry (bb.CodeUnavailable, Retry), not an unclassified 500; the
// reliability run found creates answering 500 (docs/RELIABILITY.md). Reads still work.
// It waits out the busy timeout (10 s).
func TestWriteWhileLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "browserd.db")
	db, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, _ := sqlitetest.Project(t, db, 5)

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusPending, CreatedAt: now, StartedAt: now}
	writes := []struct {
		name string
		fn   func() error
	}{
		{"CreateSession", func() error { return db.CreateSession(t.Context(), s, 5) }},
		{"CreateProject", func() error {
			return db.CreateProject(t.Context(), &bb.Project{ID: bb.NewID(), Name: "x", Concurrency: 1, CreatedAt: now, UpdatedAt: now})
		}},
	}
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Go(func() {
			err := w.fn()
			if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) {
				t.Errorf("%s with the lock held elsewhere = %v (code %q, retry %v); want %q with retry", w.name, err, bb.CodeOf(err), bb.RetryOf(err), bb.CodeUnavailable)
			}
		})
	}
	wg.Wait()
	if _, err := db.Project(t.Context(), p.ID); err != nil {
		t.Errorf("read while locked: %v", err)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(t.Context(), s, 5); err != nil {
		t.Errorf("CreateSession after the lock went: %v", err)
	}
}
