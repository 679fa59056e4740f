package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bb "github.com/browserd/browserd"
)

// sessionColumns are the columns of sessions in the order scanSession reads and
// sessionValues writes them.
const sessionColumns = `id, project_id, status, created_at, updated_at, started_at, expires_at,
	ended_at, end_reason, keep_alive, region, timeout, proxy_bytes, context_id, extension_id,
	user_metadata, browser_settings, settings, request, node_id, pid, avg_cpu_usage, memory_usage`

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
		nullText(s.UserMetadata), nullText(s.BrowserSettings), string(settings), nullText(s.Request),
		s.NodeID, s.PID, nullInt(s.AvgCPUUsage), nullInt(s.MemoryUsage),
	}, nil
}

// scanSession reads a row of sessionColumns.
func scanSession(r rowScanner) (*bb.Session, error) {
	var (
		s                                            bb.Session
		status, region                               string
		created, updated, started, expires, ended    sql.NullInt64
		cpu, mem                                     sql.NullInt64
		metadata, browserSettings, settings, request sql.NullString
	)
	err := r.Scan(&s.ID, &s.ProjectID, &status, &created, &updated, &started, &expires, &ended,
		&s.EndReason, &s.KeepAlive, &region, &s.Timeout, &s.ProxyBytes, &s.ContextID, &s.ExtensionID,
		&metadata, &browserSettings, &settings, &request, &s.NodeID, &s.PID, &cpu, &mem)
	if err != nil {
		return nil, err
	}
	s.Status, s.Region = bb.SessionStatus(status), bb.Region(region)
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	s.StartedAt, s.ExpiresAt, s.EndedAt = fromMillis(started), fromMillis(expires), fromMillis(ended)
	s.AvgCPUUsage, s.MemoryUsage = fromNullInt(cpu), fromNullInt(mem)
	s.UserMetadata = fromNullText(metadata)
	s.BrowserSettings = fromNullText(browserSettings)
	s.Request = fromNullText(request)
	if settings.Valid && settings.String != "" {
		if err := json.Unmarshal([]byte(settings.String), &s.Settings); err != nil {
			return nil, fmt.Errorf("decode settings of session %s: %w", s.ID, err)
		}
	}
	return &s, nil
}

// CreateSession inserts s unless its project already has limit live sessions, in which
// case it returns bb.ConcurrencyLimitError. The count and the insert share one IMMEDIATE
// transaction, so racing creates can't both take the last slot. An unknown project is
// a CodeNotFound error and an existing id a CodeConflict one.
func (db *DB) CreateSession(ctx context.Context, s *bb.Session, limit int) error {
	vals, err := sessionValues(s)
	if err != nil {
		return err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		var live int
		err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM projects WHERE id = ?1),
			(SELECT COUNT(*) FROM sessions WHERE project_id = ?1 AND status IN (?2, ?3))`,
			s.ProjectID, string(bb.StatusPending), string(bb.StatusRunning)).Scan(&exists, &live)
		if err != nil {
			return fmt.Errorf("count live sessions of project %s: %w", s.ProjectID, err)
		}
		if !exists {
			return bb.Errorf(bb.CodeNotFound, "project %q not found", s.ProjectID)
		}
		if live >= limit {
			return bb.ConcurrencyLimitError(limit, live)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...)
		if isDuplicate(err) {
			return bb.Errorf(bb.CodeConflict, "session %q already exists", s.ID)
		} else if err != nil {
			return fmt.Errorf("insert session %s: %w", s.ID, err)
		}
		return nil
	})
	return err
}

// Session returns a session by id, or a CodeNotFound error.
func (db *DB) Session(ctx context.Context, id string) (*bb.Session, error) {
	return session(ctx, db.reads, id)
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func session(ctx context.Context, q queryer, id string) (*bb.Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "session %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select session %s: %w", id, err)
	}
	return s, nil
}

// maxSQLPath is the longest metadata path narrowed down in SQL (one join per key;
// SQLite allows 64 tables in a join). Longer paths are matched in Go only.
const maxSQLPath = 32

// Sessions returns the sessions matching f, newest first (by creation time, then id).
func (db *DB) Sessions(ctx context.Context, f bb.SessionFilter) ([]*bb.Session, error) {
	var where []string
	var args []any
	if f.ProjectID != "" {
		where, args = append(where, "s.project_id = ?"), append(args, f.ProjectID)
	}
	if f.Status != "" {
		where, args = append(where, "s.status = ?"), append(args, string(f.Status))
	}
	if f.NodeID != "" {
		where, args = append(where, "s.node_id = ?"), append(args, f.NodeID)
	}
	if f.LiveOnly {
		where = append(where, "s.status IN (?, ?)")
		args = append(args, string(bb.StatusPending), string(bb.StatusRunning))
	}
	if !f.EndedSince.IsZero() {
		where, args = append(where, "(s.ended_at IS NULL OR s.ended_at >= ?)"), append(args, f.EndedSince.UnixMilli())
	}
	if q := f.Metadata; q != nil && len(q.Path) > 0 && len(q.Path) <= maxSQLPath {
		cond, condArgs := metadataCondition(q)
		where, args = append(where, cond), append(args, condArgs...)
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions s`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY s.created_at DESC, s.id`
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	defer rows.Close()
	ss := []*bb.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		// The SQL condition narrows the rows down; Match decides, so that the result
		// is exactly bb.MetadataQuery's semantics (duplicate keys: the last one wins).
		if f.Metadata != nil && !f.Metadata.Match(s.UserMetadata) {
			continue
		}
		ss = append(ss, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	return ss, nil
}

// metadataCondition returns a WHERE condition true for every session whose
// user_metadata has the string q.Value at q.Path. It walks the path with json_each, one
// level per key, comparing decoded keys as bound parameters: JSON path syntax can't
// express every key (SQLite's `$."k"` can't contain a double quote).
func metadataCondition(q *bb.MetadataQuery) (string, []any) {
	var from, cond strings.Builder
	args := make([]any, 0, len(q.Path)+1)
	// Malformed JSON (never written by the Manager) must not fail the whole list.
	from.WriteString("json_each(CASE WHEN json_valid(s.user_metadata) THEN s.user_metadata ELSE '{}' END) j0")
	for i, key := range q.Path {
		if i > 0 {
			fmt.Fprintf(&from, ", json_each(CASE WHEN j%[1]d.type = 'object' THEN j%[1]d.value ELSE '{}' END) j%[2]d", i-1, i)
			cond.WriteString(" AND ")
		}
		fmt.Fprintf(&cond, "j%d.key = ?", i)
		args = append(args, key)
	}
	last := len(q.Path) - 1
	fmt.Fprintf(&cond, " AND j%[1]d.type = 'text' AND j%[1]d.value = ?", last)
	args = append(args, q.Value)
	return "s.user_metadata IS NOT NULL AND EXISTS (SELECT 1 FROM " + from.String() + " WHERE " + cond.String() + ")", args
}

// updateSession writes every column but id, in sessionColumns order, then the id.
const updateSession = `UPDATE sessions SET project_id = ?, status = ?, created_at = ?, updated_at = ?,
	started_at = ?, expires_at = ?, ended_at = ?, end_reason = ?, keep_alive = ?, region = ?,
	timeout = ?, proxy_bytes = ?, context_id = ?, extension_id = ?, user_metadata = ?,
	browser_settings = ?, settings = ?, request = ?, node_id = ?, pid = ?, avg_cpu_usage = ?,
	memory_usage = ? WHERE id = ?`

// UpdateSession reads a session, calls fn on it and writes it back, in one IMMEDIATE
// transaction. fn's error aborts the update and is returned as it is. The id can't be
// changed.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*bb.Session) error) (*bb.Session, error) {
	var out *bb.Session
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		s, err := session(ctx, tx, id)
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
		if _, err := tx.ExecContext(ctx, updateSession, append(vals[1:], id)...); err != nil {
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
