package browserd

import (
	"context"
	"time"
)

// SessionStore keeps sessions. Implementations (internal/sqlite, internal/postgres) pass
// the shared contract suite in internal/storetest.
type SessionStore interface {
	// CreateSession inserts s if its project has fewer than limit live (PENDING or
	// RUNNING) sessions, atomically: two racing creates can't both take the last slot.
	// At the limit it returns ConcurrencyLimitError(limit, current).
	CreateSession(ctx context.Context, s *Session, limit int) error
	// Session returns a session by id, or a CodeNotFound error.
	Session(ctx context.Context, id string) (*Session, error)
	// Sessions returns the sessions matching f, newest first.
	Sessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// UpdateSession reads a session, calls fn on it and writes it back, in one
	// transaction. fn's error aborts the update and is returned. UpdatedAt is set by the
	// caller inside fn.
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error)
}

// ProjectStore keeps projects and computes their usage.
type ProjectStore interface {
	CreateProject(ctx context.Context, p *Project) error
	// Project returns a project by id, or a CodeNotFound error.
	Project(ctx context.Context, id string) (*Project, error)
	Projects(ctx context.Context) ([]*Project, error)
	// UpdateProject reads, changes with fn and writes a project in one transaction.
	UpdateProject(ctx context.Context, id string, fn func(*Project) error) (*Project, error)
	// Usage sums a project's usage; sessions still live count up to now.
	Usage(ctx context.Context, projectID string, now time.Time) (ProjectUsage, error)
	// AddFetchProxyBytes adds to a project's usage the bytes one of its POST /v1/fetch
	// calls read through a managed proxy (proxies: true); Usage counts them in ProxyBytes.
	AddFetchProxyBytes(ctx context.Context, projectID string, n int64) error
	// FetchProxyBytes returns what AddFetchProxyBytes added up for a project (0 for none).
	FetchProxyBytes(ctx context.Context, projectID string) (int64, error)
}

// KeyStore keeps API keys (their hashes) and server-wide settings.
type KeyStore interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with the given SHA-256 digest, or CodeNotFound.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	APIKeys(ctx context.Context, projectID string) ([]*APIKey, error)
	// SettingOrInit returns the named setting, storing init first when it is absent.
	// Used for the server's signing secret, shared by every node of a cluster.
	SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error)
	// SetSetting stores a setting, replacing its value: for the settings that change
	// while the server runs (the cluster secret's rotation, dashboard sign-outs).
	SetSetting(ctx context.Context, name string, value []byte) error
}

// Store is everything the server keeps.
type Store interface {
	SessionStore
	ProjectStore
	KeyStore
	ContextStore          // context.go
	ContextWriteBackStore // context.go
	ExtensionStore        // extension.go
	CertificateStore      // certificate.go
	Close() error
}
