package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	bb "github.com/browserd/browserd"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// busyTimeout is how long a statement waits for a lock held by another connection or
// process (such as `browserd` admin commands next to a running server) before failing.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is a SQLite database holding everything browserd keeps. It implements bb.Store and
// is safe for concurrent use. Times are kept to the millisecond and come back in UTC;
// JSON fields are kept verbatim (nil as NULL); Session.Settings is kept as its JSON
// encoding, so an empty non-nil AllowedDomains comes back nil.
type DB struct {
	write  *sql.DB    // one connection; transactions are BEGIN IMMEDIATE
	read   *sql.DB    // read-only connections
	reads  *stmtCache // prepared fixed queries on read
	writes *stmtCache // prepared fixed statements on write (the log inserts)
	log    *slog.Logger
}

var _ bb.Store = (*DB)(nil)

// Open opens (creating it if needed) the SQLite database at path and applies the
// migrations it lacks. A nil logger discards. The caller must Close the DB.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" || strings.ContainsRune(path, '?') || path == ":memory:" {
		// '?' starts the driver's parameters; ":memory:" would give each pooled
		// connection its own database.
		return nil, fmt.Errorf("open sqlite: invalid database path %q", path)
	}
	common := "_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	write, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer: SQLite allows one anyway, and queueing in database/sql is cheaper
	// and fairer than spinning on SQLITE_BUSY.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	// The writer connects first so that the file exists and is in WAL mode before
	// any read-only connection opens it.
	if err := write.PingContext(ctx); err != nil {
		_ = write.Close() // the ping error is the one worth returning
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = write.Close() // the open error is the one worth returning
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db := &DB{write: write, read: read, reads: newStmtCache(read), writes: newStmtCache(write), log: logger}
	if err := db.migrate(ctx); err != nil {
		_ = db.Close() // the migration error is the one worth returning
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	return errors.Join(db.reads.Close(), db.writes.Close(), db.read.Close(), db.write.Close())
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

// migrate applies the migrations the database lacks, each in its own transaction. The
// check runs inside the (IMMEDIATE) transaction, so two processes opening the same new
// file apply each migration once.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixMilli()); err != nil {
				return err
			}
			db.log.Info("database migrated", "version", m.version, "migration", m.name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing when fn returns nil.
// fn's error is returned as it is.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error matters; a failed rollback leaves nothing committed
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// unavailable makes a write that failed because another process held the database's
// lock past busyTimeout, or because the disk is full, a 503 the client should retry:
// nothing was written, and the same request may succeed in a moment. Other errors are
// returned as they are.
func unavailable(err error) error {
	switch errorCode(err) & 0xff { // the primary result code
	case codeBusy, codeLocked, codeFull:
		return &bb.Error{Code: bb.CodeUnavailable, Retry: true, Err: err,
			Message: "The database is busy or out of disk space, and the request was not carried out. Retry it."}
	}
	return err
}

// sqliteError is implemented by the driver's *sqlite.Error; Code is the extended
// result code.
type sqliteError interface {
	error
	Code() int
}

// Extended result codes of constraint violations (https://sqlite.org/rescode.html).
const (
	codePrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	codeUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
	codeForeignKey = 787  // SQLITE_CONSTRAINT_FOREIGNKEY
)

// Primary result codes of a store that cannot take a write now (https://sqlite.org/rescode.html).
const (
	codeBusy   = 5  // SQLITE_BUSY: another connection or process holds the lock
	codeLocked = 6  // SQLITE_LOCKED: a conflict within this process's shared cache
	codeFull   = 13 // SQLITE_FULL: the disk is full
)

// errorCode returns err's SQLite extended result code, or 0.
func errorCode(err error) int {
	if e, ok := errors.AsType[sqliteError](err); ok {
		return e.Code()
	}
	return 0
}

// isDuplicate reports whether err is a primary key or unique constraint violation.
func isDuplicate(err error) bool {
	c := errorCode(err)
	return c == codePrimaryKey || c == codeUnique
}

// millis converts t to Unix milliseconds, the zero time to NULL. Precision below a
// millisecond is dropped.
func millis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromMillis is the inverse of millis; times come back in UTC.
func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// nullInt converts an optional measurement to a column value.
func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

// fromNullInt is the inverse of nullInt.
func fromNullInt(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

// nullText stores raw JSON as text, nil (or empty) as NULL.
func nullText(b []byte) sql.NullString {
	if len(b) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

// fromNullText is the inverse of nullText.
func fromNullText(s sql.NullString) []byte {
	if !s.Valid || s.String == "" {
		return nil
	}
	return []byte(s.String)
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// collect scans every row with scan into a non-nil slice, and closes rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
