package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bb "github.com/browserd/browserd"
)

var _ bb.WebhookStore = (*DB)(nil)

const webhookColumns = `id, project_id, endpoint, event_types, secret, previous_secret, previous_expires_at, created_at, updated_at`

func scanWebhook(r rowScanner) (*bb.Webhook, error) {
	var w bb.Webhook
	var types string
	var prevAt, created, updated sql.NullInt64
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
// bb.DuplicateWebhookError.
func (db *DB) CreateWebhook(ctx context.Context, w *bb.Webhook) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.ProjectID, w.Endpoint, eventTypesJSON(w.EventTypes), w.Secret, w.PreviousSecret,
		millis(w.PreviousExpiresAt), millis(w.CreatedAt), millis(w.UpdatedAt))
	switch {
	case errorCode(err) == codeUnique:
		return bb.DuplicateWebhookError(w.Endpoint)
	case errorCode(err) == codePrimaryKey:
		return bb.Errorf(bb.CodeConflict, "webhook %q already exists", w.ID)
	case errorCode(err) == codeForeignKey:
		return bb.Errorf(bb.CodeNotFound, "project %q not found", w.ProjectID)
	case err != nil:
		return unavailable(fmt.Errorf("insert webhook %s: %w", w.ID, err))
	}
	return nil
}

// Webhook returns a webhook by id, or CodeNotFound.
func (db *DB) Webhook(ctx context.Context, id string) (*bb.Webhook, error) {
	return getWebhook(ctx, db.reads, id)
}

func getWebhook(ctx context.Context, q queryer, id string) (*bb.Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select webhook %s: %w", id, err)
	}
	return w, nil
}

// pageAfter is the WHERE clause and arguments of a newest-first page after c.
func pageAfter(c *bb.PageCursor) (string, []any) {
	if c == nil {
		return "", nil
	}
	return ` AND (created_at < ? OR (created_at = ? AND id < ?))`, []any{c.CreatedAt.UnixMilli(), c.CreatedAt.UnixMilli(), c.ID}
}

// Webhooks returns a page of a project's webhooks, newest first.
func (db *DB) Webhooks(ctx context.Context, projectID string, after *bb.PageCursor, limit int) ([]*bb.Webhook, error) {
	where, args := pageAfter(after)
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = ?`+where+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(append([]any{projectID}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("select webhooks: %w", err)
	}
	return collect(rows, scanWebhook)
}

// UpdateWebhook reads a webhook, calls fn on it and writes it back, in one IMMEDIATE
// transaction. A new endpoint the project has already is bb.DuplicateWebhookError.
func (db *DB) UpdateWebhook(ctx context.Context, id string, fn func(*bb.Webhook) error) (*bb.Webhook, error) {
	var out *bb.Webhook
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := getWebhook(ctx, tx, id)
		if err != nil {
			return err
		}
		projectID, created := w.ProjectID, w.CreatedAt
		if err := fn(w); err != nil {
			return err
		}
		w.ID, w.ProjectID, w.CreatedAt = id, projectID, created
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET endpoint = ?, event_types = ?, secret = ?, previous_secret = ?,
			previous_expires_at = ?, updated_at = ? WHERE id = ?`,
			w.Endpoint, eventTypesJSON(w.EventTypes), w.Secret, w.PreviousSecret, millis(w.PreviousExpiresAt),
			millis(w.UpdatedAt), id)
		if errorCode(err) == codeUnique {
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
	res, err := db.write.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return unavailable(fmt.Errorf("delete webhook %s: %w", id, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	}
	return nil
}

// EnqueueWebhookEvent adds a pending delivery of e for every subscribed webhook of its
// project, in one transaction.
func (db *DB) EnqueueWebhookEvent(ctx context.Context, e *bb.WebhookEvent) (int, error) {
	// Most projects have no webhook: a read on a read connection settles that without
	// taking the one write lock (every session makes three events).
	var hooks int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE project_id = ?`, e.ProjectID).Scan(&hooks); err != nil {
		return 0, fmt.Errorf("count webhooks: %w", err)
	} else if hooks == 0 {
		return 0, nil
	}
	n := 0
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = ?`, e.ProjectID)
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
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, project_id, event_id, event_type,
				payload, status, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (webhook_id, event_id) DO NOTHING`,
				bb.NewID(), w.ID, e.ProjectID, e.ID, string(e.Type), e.Payload, string(bb.DeliveryPending),
				millis(e.CreatedAt), millis(e.CreatedAt))
			if err != nil {
				return fmt.Errorf("insert delivery: %w", err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	return n, err
}

const deliveryColumns = `id, webhook_id, project_id, event_id, event_type, payload, status, attempts, created_at, next_attempt_at`

func scanDelivery(r rowScanner) (*bb.WebhookDelivery, error) {
	var d bb.WebhookDelivery
	var typ, status, attempts string
	var created, next sql.NullInt64
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

// ClaimWebhookDeliveries leases due deliveries to owner. SQLite has one writer, so the
// UPDATE … RETURNING of one statement is the claim.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*bb.WebhookDelivery, error) {
	var out []*bb.WebhookDelivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
				AND lease_until <= ? ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+deliveryColumns, owner, now.Add(lease).UnixMilli(), now.UnixMilli(), now.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		out, err = collect(rows, scanDelivery)
		return err
	})
	return out, err
}

// RecordWebhookAttempt appends an attempt and sets the delivery's status and next
// attempt, releasing its lease.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id string, a bb.WebhookAttempt, status bb.DeliveryStatus, next time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var attempts string
		err := tx.QueryRowContext(ctx, `SELECT attempts FROM webhook_deliveries WHERE id = ?`, id).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // its webhook was deleted meanwhile
		} else if err != nil {
			return fmt.Errorf("select delivery %s: %w", id, err)
		}
		as, err := decodeAttempts(id, attempts)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(append(as, a)) // plain fields always marshal
		_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = ?, status = ?, next_attempt_at = ?,
			lease_owner = '', lease_until = 0 WHERE id = ?`, string(b), string(status), millis(next), id)
		if err != nil {
			return fmt.Errorf("update delivery %s: %w", id, err)
		}
		return nil
	})
}

// WebhookDeliveries returns a page of a webhook's deliveries, newest first.
func (db *DB) WebhookDeliveries(ctx context.Context, webhookID string, after *bb.PageCursor, limit int) ([]*bb.WebhookDelivery, error) {
	where, args := pageAfter(after)
	rows, err := db.read.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = ?`+where+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(append([]any{webhookID}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("select deliveries: %w", err)
	}
	return collect(rows, scanDelivery)
}

// PurgeWebhookDeliveries deletes the finished deliveries created before t.
func (db *DB) PurgeWebhookDeliveries(ctx context.Context, before time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE status != 'pending' AND created_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, unavailable(fmt.Errorf("purge deliveries: %w", err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
