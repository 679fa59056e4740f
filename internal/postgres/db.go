package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	neturl "net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	bb "github.com/browserd/browserd"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the key of the advisory lock held while migrating: the first eight
// bytes of "browserd" read as a big-endian number.
const migrationLock int64 = 0x62726f7773657264

// DB is a PostgreSQL database holding everything browserd keeps. It implements bb.Store
// and bb.ArtifactStore and is safe for concurrent use, also by several processes. Times
// are kept to the millisecond and come back in UTC; JSON fields are kept verbatim (nil as
// NULL); Session.Settings is kept as its JSON encoding, as internal/sqlite does.
type DB struct {
	pool     *pgxpool.Pool
	password string // of the URL, to redact from errors
	log      *slog.Logger
}

var (
	_ bb.Store         = (*DB)(nil)
	_ bb.ArtifactStore = (*DB)(nil)
)

// IsURL reports whether database names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsURL(database string) bool {
	lower := strings.ToLower(database)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// Open connects to the database at url (postgres://USER:PASS@HOST:PORT/DB?sslmode=…,
// any parameter pgx knows) and applies the migrations it lacks. A nil logger discards.
// Errors never contain the URL's password. The caller must Close the DB.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pw := password(url)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, redactErr(fmt.Errorf("open postgres %s: invalid URL: %w", Redact(url), err), pw)
	}
	// Defaults for what the URL does not say. The pool's size bounds this node's
	// connections (pgxpool's own default is the number of CPUs, at least 4); PostgreSQL's
	// max_connections (100 by default) is shared by every node.
	if !hasParam(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 8)
	}
	if !hasParam(url, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A request must not hang on an unreachable database: it answers 503 instead.
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redactErr(fmt.Errorf("open postgres %s: %w", Redact(url), err), pw)
	}
	db := &DB{pool: pool, password: pw, log: logger}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, redactErr(fmt.Errorf("open postgres %s: %w", Redact(url), err), pw)
	}
	return db, nil
}

// hasParam reports whether the URL sets the query parameter name.
func hasParam(rawURL, name string) bool {
	u, err := neturl.Parse(rawURL)
	return err == nil && u.Query().Has(name)
}

// Close closes the pool's connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// migration is one numbered file of migrations/.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their files are named
// NNNN_description.sql; a number once released never changes meaning.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, each in its own transaction, while
// holding a session-level advisory lock on one connection: a second node starting at
// the same time waits for the lock and then finds every migration applied.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return classify(fmt.Errorf("connect: %w", err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return classify(fmt.Errorf("take the migration lock: %w", err))
	}
	defer func() {
		// A failed unlock (the connection broke) frees the lock anyway: PostgreSQL drops
		// session locks with the session, and a broken connection is not reused.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return classify(fmt.Errorf("create schema_migrations: %w", err))
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// Exec without arguments uses the simple protocol: a file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				m.version, time.Now().UnixMilli()); err != nil {
				return err
			}
			db.log.Info("database migrated", "version", m.version, "migration", m.name)
			return nil
		})
		if err != nil {
			return classify(fmt.Errorf("apply migration %s: %w", m.name, err))
		}
	}
	return nil
}

// inTx runs fn in a READ COMMITTED transaction, committing when fn returns nil. fn's
// error is returned as it is; errors of the database are classified (classify). The
// limits fn enforces hold because fn locks the rows it reads to decide (FOR UPDATE).
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.classify(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx)) // fn's error matters; nothing is committed either way
		return db.classify(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// classify is the package function classify with the password redacted.
func (db *DB) classify(err error) error {
	return redactErr(classify(err), db.password)
}

// classify makes an error of a database that cannot take the request now a 503 the
// client should retry (bb.CodeUnavailable with Retry): the connection failed or broke,
// the server is shutting down, starting or out of connections, or a lock or
// serialization conflict aborted the transaction. Nothing was written, and the same
// request may succeed in a moment. *bb.Error values, context errors and the errors of
// a statement (constraint violations, bad SQL) are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*bb.Error](err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up; a deadline that passed is the database's slowness
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources (too many connections, disk full)
			strings.HasPrefix(pe.Code, "57P"),      // operator intervention: shutdown, cannot connect now
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03", pe.Code == "25006": // lock not available; read-only (a standby)
		default:
			return err
		}
	} else if !connectionError(err) {
		return err
	}
	return &bb.Error{Code: bb.CodeUnavailable, Retry: true, Err: err,
		Message: "The database is unavailable, and the request was not carried out. Retry it."}
}

// connectionError reports whether err is a failure to reach the server or a
// connection that broke: refused, reset, closed by a restarting server, timed out.
// Other errors (fn's own in inTx, a statement's) are not.
func connectionError(err error) bool {
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// Constraint violations (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	codeUnique     = "23505"
	codeForeignKey = "23503"
)

// pgCode returns err's SQLSTATE and the name of the constraint it violated.
func pgCode(err error) (code, constraint string) {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// millis converts t to Unix milliseconds, the zero time to NULL. Precision below a
// millisecond is dropped.
func millis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixMilli()
	return &n
}

// fromMillis is the inverse of millis; times come back in UTC.
func fromMillis(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.UnixMilli(*n).UTC()
}

// nullBytes stores raw JSON, nil (or empty) as NULL.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// text makes s storable in a TEXT column: PostgreSQL refuses NUL and invalid UTF-8,
// which SQLite keeps. Identifiers and names never have them (they are validated);
// this guards the free-form strings of CDP logs.
func text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
