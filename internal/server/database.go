package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/sqlite"
)

// Store is everything the server keeps in its database: *sqlite.DB (the embedded
// default) or *postgres.DB (--database postgres://…, state shared by several nodes).
type Store interface {
	bb.Store
	bb.ArtifactStore
	bb.WebhookStore // internal/webhooks
	// SessionCounts feeds the session metrics (internal/metrics).
	SessionCounts(ctx context.Context) ([]bb.SessionCount, error)
	// ProjectStorageBytes feeds the project disk quota (internal/profiles).
	ProjectStorageBytes(ctx context.Context, projectID string) (int64, error)
	// Ping answers the readiness probe.
	Ping(ctx context.Context) error
}

var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// Database kinds, as /readyz reports them.
const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// DatabaseKind says which store --database names: "postgres" for a postgres:// or
// postgresql:// URL, else "sqlite" (a file path).
func (c *Config) DatabaseKind() string {
	if postgres.IsURL(c.Database) {
		return kindPostgres
	}
	return kindSQLite
}

// DatabasePath is the SQLite file ("" for PostgreSQL).
func (c *Config) DatabasePath() string {
	if c.DatabaseKind() == kindPostgres {
		return ""
	}
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "browserd.db")
}

// DatabaseName is --database for messages and logs: the SQLite path, or the PostgreSQL
// URL with its password hidden.
func (c *Config) DatabaseName() string {
	if c.DatabaseKind() == kindPostgres {
		return postgres.Redact(c.Database)
	}
	return c.DatabasePath()
}

// diskDirs are the directories whose disk the free-space floor watches: the data dir,
// and a SQLite file's directory.
func (c *Config) diskDirs() []string {
	if p := c.DatabasePath(); p != "" {
		return []string{c.DataDir, filepath.Dir(p)}
	}
	return []string{c.DataDir}
}

// openStore opens (and migrates) the database --database names. Errors never hold a
// PostgreSQL password.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (Store, error) {
	if cfg.DatabaseKind() == kindPostgres {
		db, err := postgres.Open(ctx, cfg.Database, logger)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return db, nil
	}
	db, err := sqlite.Open(ctx, cfg.DatabasePath(), logger)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}
