package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

// sessionColumns are the columns of sessions in the order scanSession reads and
// sessionValues writes them.
const sessionColumns = `id, project_id, status, created_at, updated_at, started_at, expires_at,
	ended_at, end_reason, keep_alive, region, timeout, proxy_bytes, context_id, extension_id,
	user_metadata, browser_settings, settings, request, node_id, pid, avg_cpu_usage, memory_usage`

// sessionPlaceholders are sessionColumns' parameters.
const sessionPlaceholders = `$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
	$17, $18, $19, $20, $21, $22, $23`

// liveStatuses is the SQL list of the statuses that count against a project's limit;
// a literal, so that the partial index sessions_project_live serves the count.
const liveStatuses = `('` + string(bb.StatusPending) + `', '` + string(bb.StatusRunning) + `')`

// sessionValues returns the column values of s, in sessionColumns order.
func sessionValues(s *bb.Session) ([]any, error) {
	settings, err := json.Marshal(s.Settings)
	if err != nil {
		return nil, fmt.Errorf("encode settings of session %s: %w", s.ID, err)
	}
	return []any{
		s.ID, s.ProjectID, string(s.Status),
		millis(s.CreatedAt), millis(s.UpdatedAt), millis(s.StartedAt), millis(s.ExpiresAt), millis(s.EndedAt),
		s.EndReason, s.KeepAlive, string(s.Region), s.Timeout, s.ProxyBytes, s.ContextID, s.ExtensionID,
		nullBytes(s.UserMetadata), nullBytes(s.BrowserSettings), settings, nullBytes(s.Request),
		s.NodeID, s.PID, s.AvgCPUUsage, s.MemoryUsage,
	}, nil
}

// scanSession reads a row of sessionColumns.
func scanSession(r pgx.Row) (*bb.Session, error) {
	var (
		s                                            bb.Session
		status, region                               string
		created, updated, started, expires, ended    *int64
		metadata, browserSettings, settings, request []byte
	)
	err := r.Scan(&s.ID, &s.ProjectID, &status, &created, &updated, &started, &expires, &ended,
		&s.EndReason, &s.KeepAlive, &region, &s.Timeout, &s.ProxyBytes, &s.ContextID, &s.ExtensionID,
		&metadata, &browserSettings, &settings, &request, &s.NodeID, &s.PID, &s.AvgCPUUsage, &s.MemoryUsage)
	if err != nil {
		return nil, err
	}
	s.Status, s.Region = bb.SessionStatus(status), bb.Region(region)
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	s.StartedAt, s.ExpiresAt, s.EndedAt = fromMillis(started), fromMillis(expires), fromMillis(ended)
	s.UserMetadata = nullBytes(metadata)
	s.BrowserSettings = nullBytes(browserSettings)
	s.Request = nullBytes(request)
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s.Settings); err != nil {
			return nil, fmt.Errorf("decode settings of session %s: %w", s.ID, err)
		}
	}
	return &s, nil
}

// CreateSession inserts s unless its project already has limit live sessions, in which
// case it returns bb.ConcurrencyLimitError. The transaction first locks the project's
// row (FOR UPDATE), so that creates for one project, from any process, count and insert
// one at a time: racing creates can't both take the last slot. An unknown project is a
// CodeNotFound error and an existing id a CodeConflict one.
func (db *DB) CreateSession(ctx context.Context, s *bb.Session, limit int) error {
	vals, err := sessionValues(s)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, s.ProjectID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return bb.Errorf(bb.CodeNotFound, "project %q not found", s.ProjectID)
		} else if err != nil {
			return fmt.Errorf("lock project %s: %w", s.ProjectID, err)
		}
		// READ COMMITTED: this statement's snapshot is taken after the lock was granted,
		// so it sees every session the previous holder inserted.
		var live int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE project_id = $1 AND status IN `+liveStatuses,
			s.ProjectID).Scan(&live); err != nil {
			return fmt.Errorf("count live sessions of project %s: %w", s.ProjectID, err)
		}
		if live >= limit {
			return bb.ConcurrencyLimitError(limit, live)
		}
		_, err = tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (`+sessionPlaceholders+`)`, vals...)
		if code, _ := pgCode(err); code == codeUnique {
			return bb.Errorf(bb.CodeConflict, "session %q already exists", s.ID)
		} else if err != nil {
			return fmt.Errorf("insert session %s: %w", s.ID, err)
		}
		return nil
	})
}

// Session returns a session by id, or a CodeNotFound error.
func (db *DB) Session(ctx context.Context, id string) (*bb.Session, error) {
	s, err := session(ctx, db.pool, id, "")
	return s, db.classify(err)
}

// querier is a *pgxpool.Pool or a pgx.Tx.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// session reads a session; lock is "" or a locking clause (FOR UPDATE).
func session(ctx context.Context, q querier, id, lock string) (*bb.Session, error) {
	s, err := scanSession(q.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "session %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select session %s: %w", id, err)
	}
	return s, nil
}

// Sessions returns the sessions matching f, newest first (by creation time, then id).
func (db *DB) Sessions(ctx context.Context, f bb.SessionFilter) ([]*bb.Session, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.ProjectID != "" {
		where = append(where, "project_id = "+arg(f.ProjectID))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.NodeID != "" {
		where = append(where, "node_id = "+arg(f.NodeID))
	}
	if f.LiveOnly {
		where = append(where, "status IN "+liveStatuses)
	}
	if !f.EndedSince.IsZero() {
		where = append(where, "(ended_at IS NULL OR ended_at >= "+arg(f.EndedSince.UnixMilli())+")")
	}
	if q := f.Metadata; q != nil && len(q.Path) > 0 {
		// Narrows the rows down: a string at the path (jsonb keeps the last of duplicate
		// keys, as Match does). #> also walks into arrays by index; Match decides below.
		path := arg(q.Path)
		where = append(where, fmt.Sprintf("jsonb_typeof(metadata_json #> %s::text[]) = 'string' AND metadata_json #>> %[1]s::text[] = %s",
			path, arg(q.Value)))
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at DESC, id`
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select sessions: %w", err))
	}
	defer rows.Close()
	ss := []*bb.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, db.classify(fmt.Errorf("scan session: %w", err))
		}
		// The SQL condition narrows the rows down; Match decides, so that the result
		// is exactly bb.MetadataQuery's semantics.
		if f.Metadata != nil && !f.Metadata.Match(s.UserMetadata) {
			continue
		}
		ss = append(ss, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.classify(fmt.Errorf("select sessions: %w", err))
	}
	return ss, nil
}

// updateSession writes every column but id, in sessionColumns order, then the id.
const updateSession = `UPDATE sessions SET project_id = $1, status = $2, created_at = $3, updated_at = $4,
	started_at = $5, expires_at = $6, ended_at = $7, end_reason = $8, keep_alive = $9, region = $10,
	timeout = $11, proxy_bytes = $12, context_id = $13, extension_id = $14, user_metadata = $15,
	browser_settings = $16, settings = $17, request = $18, node_id = $19, pid = $20, avg_cpu_usage = $21,
	memory_usage = $22 WHERE id = $23`

// UpdateSession reads a session (locking its row), calls fn on it and writes it back,
// in one transaction: concurrent updates, from any process, apply one after the other.
// fn's error aborts the update and is returned as it is. The id can't be changed.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*bb.Session) error) (*bb.Session, error) {
	var out *bb.Session
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		s, err := session(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
		s.ID = id
		vals, err := sessionValues(s)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateSession, append(vals[1:], id)...); err != nil {
			return fmt.Errorf("update session %s: %w", id, err)
		}
		out = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
