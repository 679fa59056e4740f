package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

var _ bb.ArtifactStore = (*DB)(nil)

// MarkArtifacts records that a session has artifacts; a second call changes nothing.
func (db *DB) MarkArtifacts(ctx context.Context, sessionID string, at time.Time) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO session_artifacts (session_id, created_at) VALUES (?, ?) ON CONFLICT (session_id) DO NOTHING`,
		sessionID, at.UnixMilli())
	if errorCode(err) == codeForeignKey {
		return bb.Errorf(bb.CodeNotFound, "session %q not found", sessionID)
	} else if err != nil {
		return unavailable(fmt.Errorf("mark artifacts of session %s: %w", sessionID, err))
	}
	return nil
}

// ArtifactsState reports whether the session's artifacts are marked and purged.
func (db *DB) ArtifactsState(ctx context.Context, sessionID string) (marked, purged bool, err error) {
	var purgedAt sql.NullInt64
	err = db.read.QueryRowContext(ctx, `SELECT purged_at FROM session_artifacts WHERE session_id = ?`, sessionID).Scan(&purgedAt)
	if err == sql.ErrNoRows {
		return false, false, nil
	} else if err != nil {
		return false, false, fmt.Errorf("artifacts of session %s: %w", sessionID, err)
	}
	return true, purgedAt.Valid, nil
}

// logChunk is the most logs one INSERT statement writes. A statement per log cost
// more than the row itself: database/sql's and the driver's work per call, and with a
// deadline a watcher goroutine per call. Smaller remainders go in halving chunks, so
// at most log2(logChunk)+1 statements are ever prepared.
const logChunk = 32

// logColumnCount is the number of columns insertLogs binds per log.
const logColumnCount = 13

// insertLogs returns the INSERT statement text for n logs.
func insertLogs(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO session_logs (session_id, seq, method, page_id, cdp_session_id, frame_id, loader_id,
		request_body, request_raw, request_at, response_body, response_raw, response_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// AppendSessionLogs numbers and inserts logs in one transaction, up to logChunk rows
// per statement. The statements run without ctx's deadline: the transaction holds the
// write lock, so they wait for nobody; ctx is checked between them and bounds BEGIN.
func (db *DB) AppendSessionLogs(ctx context.Context, logs []bb.SessionLog) error {
	if len(logs) == 0 {
		return nil
	}
	// Prepared on the write pool's one connection, so before the transaction takes it.
	var stmts [logChunk + 1]*sql.Stmt
	for n := logChunk; n > 0; n /= 2 {
		if n <= len(logs) || n == 1 {
			st, err := db.writes.stmt(ctx, insertLogs(n))
			if err != nil || st == nil {
				return unavailable(fmt.Errorf("append session logs: prepare: %w", err))
			}
			stmts[n] = st
		}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		next := map[string]int64{}
		for i := range logs {
			l := &logs[i]
			seq, ok := next[l.SessionID]
			if !ok {
				if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM session_logs WHERE session_id = ?`,
					l.SessionID).Scan(&seq); err != nil {
					return fmt.Errorf("append session logs: %w", err)
				}
			}
			seq++
			next[l.SessionID] = seq
			l.Seq = seq
		}
		ictx := context.WithoutCancel(ctx)
		args := make([]any, 0, logColumnCount*min(len(logs), logChunk))
		for rest := logs; len(rest) > 0; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("append session logs: %w", err)
			}
			n := logChunk
			for n > len(rest) {
				n /= 2
			}
			chunk := rest[:n]
			rest = rest[n:]
			args = args[:0]
			for i := range chunk {
				args = appendLogArgs(args, &chunk[i])
			}
			_, err := tx.StmtContext(ictx, stmts[n]).ExecContext(ictx, args...)
			if errorCode(err) == codeForeignKey {
				return db.unknownLogSession(ictx, tx, chunk)
			} else if err != nil {
				return fmt.Errorf("append session logs: %w", err)
			}
		}
		return nil
	})
}

// unknownLogSession names a session of logs that does not exist, after an insert of
// them failed on the foreign key.
func (db *DB) unknownLogSession(ctx context.Context, tx *sql.Tx, logs []bb.SessionLog) error {
	for i := range logs {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, logs[i].SessionID).Scan(&one)
		if err == sql.ErrNoRows {
			return bb.Errorf(bb.CodeNotFound, "session %q not found", logs[i].SessionID)
		} else if err != nil {
			return fmt.Errorf("append session logs: %w", err)
		}
	}
	return bb.Errorf(bb.CodeNotFound, "a session of the logs was not found")
}

// appendLogArgs appends l's column values, in insertLogs' order, as plain values (nil
// for NULL): no driver.Valuer to call per value.
func appendLogArgs(args []any, l *bb.SessionLog) []any {
	args = append(args, l.SessionID, l.Seq, l.Method, int64(l.PageID), l.CDPSessionID, l.FrameID, l.LoaderID)
	for _, m := range []*bb.LogMessage{l.Request, l.Response} {
		if m == nil {
			args = append(args, nil, nil, nil)
			continue
		}
		body := string(m.Body)
		if body == "" {
			body = "{}"
		}
		var at any
		if !m.Timestamp.IsZero() {
			at = m.Timestamp.UnixMilli()
		}
		args = append(args, body, m.Raw, at)
	}
	return args
}

func fromLogColumns(body, raw sql.NullString, at sql.NullInt64) *bb.LogMessage {
	if !body.Valid {
		return nil
	}
	return &bb.LogMessage{Body: []byte(body.String), Raw: raw.String, Timestamp: fromMillis(at)}
}

// SessionLogs returns up to limit of a session's logs after afterSeq, in order.
func (db *DB) SessionLogs(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]bb.SessionLog, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, method, page_id, cdp_session_id, frame_id, loader_id,
		request_body, request_raw, request_at, response_body, response_raw, response_at
		FROM session_logs WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?`, sessionID, afterSeq, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("session logs of %s: %w", sessionID, err)
	}
	defer rows.Close()
	out := []bb.SessionLog{}
	for rows.Next() {
		l := bb.SessionLog{SessionID: sessionID}
		var reqBody, reqRaw, resBody, resRaw sql.NullString
		var reqAt, resAt sql.NullInt64
		if err := rows.Scan(&l.Seq, &l.Method, &l.PageID, &l.CDPSessionID, &l.FrameID, &l.LoaderID,
			&reqBody, &reqRaw, &reqAt, &resBody, &resRaw, &resAt); err != nil {
			return nil, fmt.Errorf("session logs of %s: %w", sessionID, err)
		}
		l.Request = fromLogColumns(reqBody, reqRaw, reqAt)
		l.Response = fromLogColumns(resBody, resRaw, resAt)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session logs of %s: %w", sessionID, err)
	}
	return out, nil
}

// ExpiredArtifacts returns sessions with unpurged artifacts that ended before endedBefore.
func (db *DB) ExpiredArtifacts(ctx context.Context, endedBefore time.Time, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT a.session_id FROM session_artifacts a
		JOIN sessions s ON s.id = a.session_id
		WHERE a.purged_at IS NULL AND s.ended_at IS NOT NULL AND s.ended_at < ?
		ORDER BY s.ended_at, a.session_id LIMIT ?`, endedBefore.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("expired artifacts: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("expired artifacts: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expired artifacts: %w", err)
	}
	return ids, nil
}

// PurgeArtifacts deletes a session's logs and marks its artifacts purged.
func (db *DB) PurgeArtifacts(ctx context.Context, sessionID string, at time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM session_logs WHERE session_id = ?`, sessionID); err != nil {
			return fmt.Errorf("purge logs of session %s: %w", sessionID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE session_artifacts SET purged_at = ? WHERE session_id = ?`,
			at.UnixMilli(), sessionID); err != nil {
			return fmt.Errorf("purge artifacts of session %s: %w", sessionID, err)
		}
		return nil
	})
}
