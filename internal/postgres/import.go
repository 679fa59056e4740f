package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

// ImportSessionLogs stores logs with the numbers they have (SessionLog.Seq, from
// another store), skipping those a session already has under the same number: for
// `browserd admin migrate`, which may run again over what it copied before. It returns
// how many it stored. A log of an unknown session is a CodeNotFound error.
func (db *DB) ImportSessionLogs(ctx context.Context, logs []bb.SessionLog) (int, error) {
	if len(logs) == 0 {
		return 0, nil
	}
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		batch := &pgx.Batch{}
		for i := range logs {
			batch.Queue(`INSERT INTO session_logs (session_id, seq, method, page_id, cdp_session_id, frame_id, loader_id,
				request_body, request_raw, request_at, response_body, response_raw, response_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
				ON CONFLICT (session_id, seq) DO NOTHING`, logRow(&logs[i])...)
		}
		br := tx.SendBatch(ctx, batch)
		for i := range logs {
			tag, err := br.Exec()
			if code, _ := pgCode(err); code == codeForeignKey {
				_ = br.Close() // the batch failed; its error is the one to return
				return bb.Errorf(bb.CodeNotFound, "session %q not found", logs[i].SessionID)
			} else if err != nil {
				_ = br.Close() // as above
				return fmt.Errorf("import session logs: %w", err)
			}
			n += int(tag.RowsAffected())
		}
		return br.Close()
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
