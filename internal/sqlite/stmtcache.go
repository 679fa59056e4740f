package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds a stmtCache; queries beyond it run unprepared.
const maxCachedStmts = 32

// stmtCache keeps prepared statements of fixed queries on a *sql.DB, so that hot reads
// (an API key by hash, a session by id) skip SQLite's parser: preparing was a quarter
// of the CPU of GET /v1/sessions/{id}. database/sql prepares a cached statement again
// on each pooled connection the first time it runs there.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// QueryRowContext runs query (which must be a constant, not built from input) through a
// prepared statement. It satisfies queryer.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		// An error preparing comes back again, in the Row, from the plain query.
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	if len(c.m) >= maxCachedStmts {
		return nil, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

// Close closes the cached statements.
func (c *stmtCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, st := range c.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}
