package sqlite

import (
	"context"
	"fmt"
	"time"
)

// BeginContextWriteBack records a write-back of contextID by sessionID for at most ttl,
// and drops the records that lapsed.
func (db *DB) BeginContextWriteBack(ctx context.Context, contextID, sessionID string, ttl time.Duration) error {
	now := time.Now().UnixMilli()
	if _, err := db.write.ExecContext(ctx, `DELETE FROM context_writebacks WHERE until_ms < ?`, now); err != nil {
		return fmt.Errorf("drop lapsed context write-backs: %w", err)
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO context_writebacks (context_id, session_id, until_ms) VALUES (?, ?, ?)
		ON CONFLICT (context_id, session_id) DO UPDATE SET until_ms = excluded.until_ms`,
		contextID, sessionID, now+ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("begin write-back of context %s: %w", contextID, err)
	}
	return nil
}

// EndContextWriteBack removes the record of a write-back.
func (db *DB) EndContextWriteBack(ctx context.Context, contextID, sessionID string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM context_writebacks WHERE context_id = ? AND session_id = ?`, contextID, sessionID)
	if err != nil {
		return fmt.Errorf("end write-back of context %s: %w", contextID, err)
	}
	return nil
}

// ContextWriteBacks counts the write-backs of contextID that have not lapsed.
func (db *DB) ContextWriteBacks(ctx context.Context, contextID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM context_writebacks WHERE context_id = ? AND until_ms >= ?`,
		contextID, time.Now().UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count write-backs of context %s: %w", contextID, err)
	}
	return n, nil
}
