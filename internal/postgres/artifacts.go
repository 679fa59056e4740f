package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

// MarkArtifacts records that a session has artifacts; a second call changes nothing.
func (db *DB) MarkArtifacts(ctx context.Context, sessionID string, at time.Time) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO session_artifacts (session_id, created_at) VALUES ($1, $2) ON CONFLICT (session_id) DO NOTHING`,
		sessionID, at.UnixMilli())
	if code, _ := pgCode(err); code == codeForeignKey {
		return bb.Errorf(bb.CodeNotFound, "session %q not found", sessionID)
	} else if err != nil {
		return db.classify(fmt.Errorf("mark artifacts of session %s: %w", sessionID, err))
	}
	return nil
}

// ArtifactsState reports whether the session's artifacts are marked and purged.
func (db *DB) ArtifactsState(ctx context.Context, sessionID string) (marked, purged bool, err error) {
	var purgedAt *int64
	err = db.pool.QueryRow(ctx, `SELECT purged_at FROM session_artifacts WHERE session_id = $1`, sessionID).Scan(&purgedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	} else if err != nil {
		return false, false, db.classify(fmt.Errorf("artifacts of session %s: %w", sessionID, err))
	}
	return true, purgedAt != nil, nil
}

// AppendSessionLogs numbers and inserts logs in one transaction. Each session's next
// numbers are taken under a transaction-scoped advisory lock on the session, so that
// appends for one session from several processes never pick the same numbers; a
// session that does not exist fails the whole batch with CodeNotFound.
func (db *DB) AppendSessionLogs(ctx context.Context, logs []bb.SessionLog) error {
	if len(logs) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var sessions []string
		for _, l := range logs {
			sessions = append(sessions, l.SessionID)
		}
		slices.Sort(sessions) // one lock order for every process: no deadlock
		sessions = slices.Compact(sessions)
		next := make(map[string]int64, len(sessions))
		for _, id := range sessions {
			var exists bool
			var seq int64
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('session_logs:' || $1, 0))`, id); err != nil {
				return fmt.Errorf("append session logs: lock session %s: %w", id, err)
			}
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1),
				COALESCE((SELECT MAX(seq) FROM session_logs WHERE session_id = $1), 0)`, id).Scan(&exists, &seq)
			if err != nil {
				return fmt.Errorf("append session logs: %w", err)
			}
			if !exists {
				return bb.Errorf(bb.CodeNotFound, "session %q not found", id)
			}
			next[id] = seq
		}
		rows := make([][]any, 0, len(logs))
		for i := range logs {
			l := &logs[i]
			next[l.SessionID]++
			l.Seq = next[l.SessionID]
			rows = append(rows, logRow(l))
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"session_logs"}, logColumnNames, pgx.CopyFromRows(rows))
		if code, _ := pgCode(err); code == codeForeignKey {
			// A session deleted after the check above.
			return bb.Errorf(bb.CodeNotFound, "a session of the batch was not found")
		} else if err != nil {
			return fmt.Errorf("append session logs: %w", err)
		}
		return nil
	})
}

// logColumnNames are the columns logRow gives values for.
var logColumnNames = []string{"session_id", "seq", "method", "page_id", "cdp_session_id", "frame_id", "loader_id",
	"request_body", "request_raw", "request_at", "response_body", "response_raw", "response_at"}

// logRow returns a log's values in logColumnNames order.
func logRow(l *bb.SessionLog) []any {
	reqBody, reqRaw, reqAt := logColumns(l.Request)
	resBody, resRaw, resAt := logColumns(l.Response)
	return []any{l.SessionID, l.Seq, text(l.Method), int64(l.PageID), text(l.CDPSessionID), text(l.FrameID), text(l.LoaderID),
		reqBody, reqRaw, reqAt, resBody, resRaw, resAt}
}

// logColumns returns a message's columns: all NULL for no message; an empty body is
// kept as {} (as internal/sqlite does).
func logColumns(m *bb.LogMessage) (body, raw []byte, at *int64) {
	if m == nil {
		return nil, nil, nil
	}
	body = []byte(m.Body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	raw = []byte(m.Raw)
	if raw == nil {
		raw = []byte{} // NOT NULL marks a message that was there
	}
	return body, raw, millis(m.Timestamp)
}

func fromLogColumns(body, raw []byte, at *int64) *bb.LogMessage {
	if body == nil {
		return nil
	}
	return &bb.LogMessage{Body: body, Raw: string(raw), Timestamp: fromMillis(at)}
}

// SessionLogs returns up to limit of a session's logs after afterSeq, in order.
func (db *DB) SessionLogs(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]bb.SessionLog, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, method, page_id, cdp_session_id, frame_id, loader_id,
		request_body, request_raw, request_at, response_body, response_raw, response_at
		FROM session_logs WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, sessionID, afterSeq, max(limit, 0))
	if err != nil {
		return nil, db.classify(fmt.Errorf("session logs of %s: %w", sessionID, err))
	}
	defer rows.Close()
	out := []bb.SessionLog{}
	for rows.Next() {
		l := bb.SessionLog{SessionID: sessionID}
		var reqBody, reqRaw, resBody, resRaw []byte
		var reqAt, resAt *int64
		if err := rows.Scan(&l.Seq, &l.Method, &l.PageID, &l.CDPSessionID, &l.FrameID, &l.LoaderID,
			&reqBody, &reqRaw, &reqAt, &resBody, &resRaw, &resAt); err != nil {
			return nil, db.classify(fmt.Errorf("session logs of %s: %w", sessionID, err))
		}
		l.Request = fromLogColumns(reqBody, reqRaw, reqAt)
		l.Response = fromLogColumns(resBody, resRaw, resAt)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, db.classify(fmt.Errorf("session logs of %s: %w", sessionID, err))
	}
	return out, nil
}

// ExpiredArtifacts returns sessions with unpurged artifacts that ended before endedBefore.
func (db *DB) ExpiredArtifacts(ctx context.Context, endedBefore time.Time, limit int) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT a.session_id FROM session_artifacts a
		JOIN sessions s ON s.id = a.session_id
		WHERE a.purged_at IS NULL AND s.ended_at IS NOT NULL AND s.ended_at < $1
		ORDER BY s.ended_at, a.session_id LIMIT $2`, endedBefore.UnixMilli(), limit)
	if err != nil {
		return nil, db.classify(fmt.Errorf("expired artifacts: %w", err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, db.classify(fmt.Errorf("expired artifacts: %w", err))
	}
	return ids, nil
}

// PurgeArtifacts deletes a session's logs and marks its artifacts purged.
func (db *DB) PurgeArtifacts(ctx context.Context, sessionID string, at time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM session_logs WHERE session_id = $1`, sessionID); err != nil {
			return fmt.Errorf("purge logs of session %s: %w", sessionID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE session_artifacts SET purged_at = $1 WHERE session_id = $2`,
			at.UnixMilli(), sessionID); err != nil {
			return fmt.Errorf("purge artifacts of session %s: %w", sessionID, err)
		}
		return nil
	})
}
