package browserd_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// chromeEnv is a Manager with real Chromium and SQLite in one directory. (The
// contexts' and extensions' Chromium tests have their own, with the profiles part:
// internal/profiles.)
type chromeEnv struct {
	dir    string
	db     *sqlite.DB
	m      *bb.Manager
	p      *bb.Project
	runDir string
}

// newChromeEnv returns a reconciled Manager over dir (a new temp dir when ""); the
// Manager is closed by t.Cleanup, which checks that no browser is left.
func newChromeEnv(t testing.TB, dir string, cfg bb.ManagerConfig) *chromeEnv {
	t.Helper()
	path := chrometest.Chrome(t)
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "browserd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &chromeEnv{dir: dir, db: db, runDir: filepath.Join(dir, "run")}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	l, err := chrome.New(chrome.Config{Path: path, RunDir: e.runDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.runDir = l.RunDir() // as root, the browsers' own copy of it (internal/chrome/sandbox.go)
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // after the Manager's: removes the sandbox init's copy
	cfg.Store, cfg.Launcher, cfg.Signer, cfg.Logger = db, l, signer, logger
	cfg.Setup.Proxies = chrometest.Proxies()
	if cfg.DisconnectGrace == 0 {
		cfg.DisconnectGrace = 50 * time.Millisecond
	}
	if e.m, err = bb.NewManager(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.m.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		chrometest.AssertNoLeaks(t, e.runDir)
	})
	return e
}

// project returns the env's project, creating it on first use.
func (e *chromeEnv) project(t testing.TB) *bb.Project {
	if e.p == nil {
		e.p, _ = sqlitetest.Project(t, e.db, 20)
	}
	return e.p
}
