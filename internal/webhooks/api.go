package webhooks

import (
	"context"
	"time"

	bb "github.com/browserd/browserd"
)

// RotationOverlap is how long the previous secret keeps signing after a rotation
// (SDK: "the previous secret keeps verifying for 24 hours").
const RotationOverlap = 24 * time.Hour

// now is the time the API records, to the millisecond as the stores keep it.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// CreateWebhook registers an endpoint for the key's project and returns the webhook
// and its secret, which is shown only here.
func (s *Service) CreateWebhook(ctx context.Context, projectID string, req bb.WebhookRequest) (*bb.Webhook, string, error) {
	if req.Endpoint == nil || req.EventTypes == nil {
		return nil, "", bb.Errorf(bb.CodeInvalid, "body/endpoint and body/eventTypes are required")
	}
	t := now()
	w := &bb.Webhook{ID: bb.NewID(), ProjectID: projectID, Endpoint: *req.Endpoint, EventTypes: req.EventTypes,
		CreatedAt: t, UpdatedAt: t}
	secret := newSecret()
	w.Secret = s.seal.seal(w.ID, secret)
	if err := s.st.CreateWebhook(ctx, w); err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

// Webhook returns a webhook of the key's project; another project's is CodeNotFound.
func (s *Service) Webhook(ctx context.Context, projectID, id string) (*bb.Webhook, error) {
	if !bb.ValidID(id) {
		return nil, bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	}
	w, err := s.st.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.ProjectID != projectID {
		return nil, bb.Errorf(bb.CodeNotFound, "webhook %q not found", id)
	}
	return w, nil
}

// Webhooks returns a page of the project's webhooks, newest first, and the cursor of
// the next page (nil at the end).
func (s *Service) Webhooks(ctx context.Context, projectID string, after *bb.PageCursor, limit int) ([]*bb.Webhook, *bb.PageCursor, error) {
	ws, err := s.st.Webhooks(ctx, projectID, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(ws) <= limit {
		return ws, nil, nil
	}
	ws = ws[:limit]
	last := ws[limit-1]
	return ws, &bb.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// UpdateWebhook changes a webhook's endpoint or event types (those req sets). Pending
// deliveries go to the new endpoint.
func (s *Service) UpdateWebhook(ctx context.Context, projectID, id string, req bb.WebhookRequest) (*bb.Webhook, error) {
	if _, err := s.Webhook(ctx, projectID, id); err != nil {
		return nil, err
	}
	return s.st.UpdateWebhook(ctx, id, func(w *bb.Webhook) error {
		if req.Endpoint != nil {
			w.Endpoint = *req.Endpoint
		}
		if req.EventTypes != nil {
			w.EventTypes = req.EventTypes
		}
		w.UpdatedAt = now()
		return nil
	})
}

// DeleteWebhook deletes a webhook; its pending deliveries are never sent.
func (s *Service) DeleteWebhook(ctx context.Context, projectID, id string) error {
	if _, err := s.Webhook(ctx, projectID, id); err != nil {
		return err
	}
	return s.st.DeleteWebhook(ctx, id)
}

// RotateWebhookSecret gives a webhook a new secret and returns it. The old one keeps
// signing (beside the new) for RotationOverlap unless revokeImmediately; a secret
// rotated away twice within the overlap is dropped at the second rotation.
func (s *Service) RotateWebhookSecret(ctx context.Context, projectID, id string, revokeImmediately bool) (string, error) {
	if _, err := s.Webhook(ctx, projectID, id); err != nil {
		return "", err
	}
	secret := newSecret()
	_, err := s.st.UpdateWebhook(ctx, id, func(w *bb.Webhook) error {
		t := now()
		if revokeImmediately {
			w.PreviousSecret, w.PreviousExpiresAt = nil, time.Time{}
		} else {
			w.PreviousSecret, w.PreviousExpiresAt = w.Secret, t.Add(RotationOverlap)
		}
		w.Secret = s.seal.seal(w.ID, secret)
		w.UpdatedAt = t
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// WebhookDeliveries returns a page of a webhook's deliveries, newest first, each with
// every attempt, and the cursor of the next page (nil at the end).
func (s *Service) WebhookDeliveries(ctx context.Context, projectID, id string, after *bb.PageCursor, limit int) ([]*bb.WebhookDelivery, *bb.PageCursor, error) {
	if _, err := s.Webhook(ctx, projectID, id); err != nil {
		return nil, nil, err
	}
	ds, err := s.st.WebhookDeliveries(ctx, id, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(ds) <= limit {
		return ds, nil, nil
	}
	ds = ds[:limit]
	last := ds[limit-1]
	return ds, &bb.PageCursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// secrets returns the secrets that sign a delivery at t: the current one, and the
// previous one during its overlap.
func (s *Service) secrets(w *bb.Webhook, t time.Time) ([]string, error) {
	cur, err := s.seal.open(w.ID, w.Secret)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if len(w.PreviousSecret) > 0 && t.Before(w.PreviousExpiresAt) {
		prev, err := s.seal.open(w.ID, w.PreviousSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}
