package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

var _ bb.WebhookStore = (*DB)(nil)

const webhookColumns = `id, project_id, endpoint, event_types, secret, previous_secret, previous_expires_at, created_at, updated_at`

func scanWebhook(r pgx.Row) (*bb.Webhook, error) {
	var w bb.Webhook
	var types string
	var prevAt, created, updated *int64
	if err := r.Scan(&w.ID, &w.ProjectID, &w.Endpoint, &types, &w.Secret, &w.PreviousSecret, &prevAt, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(types), &w.EventTypes); err != nil {
		return nil, fmt.Errorf("webhook %s: event types: %w", w.ID, err)
	}
	w.PreviousExpiresAt, w.CreatedAt, w.UpdatedAt = fromMillis(prevAt), fromMillis(created), fromMillis(updated)
	return &w, nil
}

func eventTypesJSON(ts []bb.EventType) string {
	if ts == nil {
		ts = []bb.EventType{}
	}
	b, _ := json.Marshal(ts) // strings always marshal
	return string(b)
}

// CreateWebhook inserts a webhook; an endpoint the project has already is
// bb.DuplicateWebhookError, also when another process inserts it at the same time.
func (db *DB) CreateWebhook(ctx context.Context, w *bb.Webhook) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		w.ID, w.ProjectID, w.Endpoint, eventTypesJSON(w.EventTypes), w.Secret, w.PreviousSecret,
		millis(w.PreviousExpiresAt), millis(w.CreatedAt), millis(w.UpdatedAt))
	switch code, constraint := pgCode(err); {
	case code == codeUnique && constraint == "webhooks_project_endpoint":
		return bb.DuplicateWebhookError(w.Endpoint)
	case code == codeUnique:
		return bb.Errorf(bb.CodeConflict, "webhook %q already exists", w.ID)
	case code == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", w.ProjectID)
	case err != nil:
		return db.classify(fmt.Errorf("insert webhook %s: %w", w.ID, err))
	}
	return nil
}

// Webhook returns a webhook by id, or CodeNotFound.
func (db *DB) Webhook(ctx context.Context, id string) (*bb.Webhook, error) {
	w, err := getWebhook(ctx, db.pool, id, "")
	return w, db.classify(err)
}

// getWebhook reads a webhook; lock is "" or a locking clause (FOR UPDATE).
func getWebhook(ctx context.Context, q querier, id, lock string) (*bb.Webhook, error) {
	w, err := scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select webhook %s: %w", id, err)
	}
	return w, nil
}

// pageAfter is the WHERE clause (its parameters numbered from n) and arguments of a
// newest-first page after c.
func pageAfter(c *bb.PageCursor, n int) (string, []any) {
	if c == nil {
		return "", nil
	}
	return fmt.Sprintf(` AND (created_at < $%d OR (created_at = $%d AND id < $%d))`, n, n, n+1),
		[]any{c.CreatedAt.UnixMilli(), c.ID}
}

// Webhooks returns a page of a project's webhooks, newest first.
func (db *DB) Webhooks(ctx context.Context, projectID string, after *bb.PageCursor, limit int) ([]*bb.Webhook, error) {
	where, args := pageAfter(after, 3)
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = $1`+where+
		` ORDER BY created_at DESC, id DESC LIMIT $2`, append([]any{projectID, limit}, args...)...)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select webhooks: %w", err))
	}
	out, err := collect(rows, scanWebhook)
	return out, db.classify(err)
}

// UpdateWebhook reads a webhook (locking its row), calls fn on it and writes it back,
// in one transaction. A new endpoint the project has already is bb.DuplicateWebhookError.
func (db *DB) UpdateWebhook(ctx context.Context, id string, fn func(*bb.Webhook) error) (*bb.Webhook, error) {
	var out *bb.Webhook
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		w, err := getWebhook(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		projectID, created := w.ProjectID, w.CreatedAt
		if err := fn(w); err != nil {
			return err
		}
		w.ID, w.ProjectID, w.CreatedAt = id, projectID, created
		_, err = tx.Exec(ctx, `UPDATE webhooks SET endpoint = $1, event_types = $2, secret = $3, previous_secret = $4,
			previous_expires_at = $5, updated_at = $6 WHERE id = $7`,
			w.Endpoint, eventTypesJSON(w.EventTypes), w.Secret, w.PreviousSecret, millis(w.PreviousExpiresAt),
			millis(w.UpdatedAt), id)
		if code, _ := pgCode(err); code == codeUnique {
			return bb.DuplicateWebhookError(w.Endpoint)
		} else if err != nil {
			return fmt.Errorf("update webhook %s: %w", id, err)
		}
		out = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteWebhook deletes a webhook and (by the foreign key's cascade) its deliveries.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return db.classify(fmt.Errorf("delete webhook %s: %w", id, err))
	}
	if tag.RowsAffected() == 0 {
		return bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	}
	return nil
}

// EnqueueWebhookEvent adds a pending delivery of e for every subscribed webhook of its
// project, in one transaction.
func (db *DB) EnqueueWebhookEvent(ctx context.Context, e *bb.WebhookEvent) (int, error) {
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		// FOR SHARE: a webhook deleted at the same time waits for this transaction.
		rows, err := tx.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = $1 FOR SHARE`, e.ProjectID)
		if err != nil {
			return fmt.Errorf("select webhooks: %w", err)
		}
		hooks, err := collect(rows, scanWebhook)
		if err != nil {
			return err
		}
		for _, w := range hooks {
			if !w.Subscribes(e.Type) {
				continue
			}
			tag, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, project_id, event_id, event_type,
				payload, status, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
				ON CONFLICT (webhook_id, event_id) DO NOTHING`,
				bb.NewID(), w.ID, e.ProjectID, e.ID, string(e.Type), e.Payload, string(bb.DeliveryPending),
				millis(e.CreatedAt))
			if err != nil {
				return fmt.Errorf("insert delivery: %w", err)
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	return n, err
}

const deliveryColumns = `id, webhook_id, project_id, event_id, event_type, payload, status, attempts, created_at, next_attempt_at`

func scanDelivery(r pgx.Row) (*bb.WebhookDelivery, error) {
	var d bb.WebhookDelivery
	var typ, status, attempts string
	var created, next *int64
	if err := r.Scan(&d.ID, &d.WebhookID, &d.ProjectID, &d.EventID, &typ, &d.Payload, &status, &attempts, &created, &next); err != nil {
		return nil, err
	}
	d.EventType, d.Status = bb.EventType(typ), bb.DeliveryStatus(status)
	var err error
	if d.Attempts, err = decodeAttempts(d.ID, attempts); err != nil {
		return nil, err
	}
	d.CreatedAt, d.NextAttemptAt = fromMillis(created), fromMillis(next)
	return &d, nil
}

// decodeAttempts decodes the attempts column of delivery id.
func decodeAttempts(id, s string) ([]bb.WebhookAttempt, error) {
	var as []bb.WebhookAttempt
	if err := json.Unmarshal([]byte(s), &as); err != nil {
		return nil, fmt.Errorf("delivery %s: attempts: %w", id, err)
	}
	return as, nil
}

// ClaimWebhookDeliveries leases due deliveries to owner. The due rows are locked FOR
// UPDATE SKIP LOCKED, so that nodes claiming at once take different rows, and leased,
// so that no other claim takes them until the lease ends.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*bb.WebhookDelivery, error) {
	rows, err := db.pool.Query(ctx, `UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2
		WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $3
			AND lease_until <= $3 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, owner, now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, db.classify(fmt.Errorf("claim deliveries: %w", err))
	}
	out, err := collect(rows, scanDelivery)
	return out, db.classify(err)
}

// RecordWebhookAttempt appends an attempt and sets the delivery's status and next
// attempt, releasing its lease.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id string, a bb.WebhookAttempt, status bb.DeliveryStatus, next time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var attempts string
		err := tx.QueryRow(ctx, `SELECT attempts FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, id).Scan(&attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // its webhook was deleted meanwhile
		} else if err != nil {
			return fmt.Errorf("select delivery %s: %w", id, err)
		}
		as, err := decodeAttempts(id, attempts)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(append(as, a)) // plain fields always marshal
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET attempts = $1, status = $2, next_attempt_at = $3,
			lease_owner = '', lease_until = 0 WHERE id = $4`, string(b), string(status), millis(next), id)
		if err != nil {
			return fmt.Errorf("update delivery %s: %w", id, err)
		}
		return nil
	})
}

// WebhookDeliveries returns a page of a webhook's deliveries, newest first.
func (db *DB) WebhookDeliveries(ctx context.Context, webhookID string, after *bb.PageCursor, limit int) ([]*bb.WebhookDelivery, error) {
	where, args := pageAfter(after, 3)
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = $1`+where+
		` ORDER BY created_at DESC, id DESC LIMIT $2`, append([]any{webhookID, limit}, args...)...)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select deliveries: %w", err))
	}
	out, err := collect(rows, scanDelivery)
	return out, db.classify(err)
}

// PurgeWebhookDeliveries deletes the finished deliveries created before t.
func (db *DB) PurgeWebhookDeliveries(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, db.classify(fmt.Errorf("purge deliveries: %w", err))
	}
	return int(tag.RowsAffected()), nil
}
