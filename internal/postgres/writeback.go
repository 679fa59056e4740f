package postgres

import (
	"context"
	"fmt"
	"time"
)

// BeginContextWriteBack records a write-back of contextID by sessionID for at most ttl
// by the database's clock (nodes' clocks may disagree), and drops the records that
// lapsed.
func (db *DB) BeginContextWriteBack(ctx context.Context, contextID, sessionID string, ttl time.Duration) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM context_writebacks WHERE until_ms < `+dbNow); err != nil {
		return db.classify(fmt.Errorf("drop lapsed context write-backs: %w", err))
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO context_writebacks (context_id, session_id, until_ms)
		VALUES ($1, $2, `+dbNow+` + $3)
		ON CONFLICT (context_id, session_id) DO UPDATE SET until_ms = EXCLUDED.until_ms`,
		text(contextID), text(sessionID), ttl.Milliseconds())
	if err != nil {
		return db.classify(fmt.Errorf("begin write-back of context %s: %w", contextID, err))
	}
	return nil
}

// EndContextWriteBack removes the record of a write-back.
func (db *DB) EndContextWriteBack(ctx context.Context, contextID, sessionID string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM context_writebacks WHERE context_id = $1 AND session_id = $2`, text(contextID), text(sessionID))
	if err != nil {
		return db.classify(fmt.Errorf("end write-back of context %s: %w", contextID, err))
	}
	return nil
}

// ContextWriteBacks counts the write-backs of contextID that have not lapsed.
func (db *DB) ContextWriteBacks(ctx context.Context, contextID string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM context_writebacks WHERE context_id = $1 AND until_ms >= `+dbNow,
		text(contextID)).Scan(&n)
	if err != nil {
		return 0, db.classify(fmt.Errorf("count write-backs of context %s: %w", contextID, err))
	}
	return n, nil
}
