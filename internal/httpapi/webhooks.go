package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	bb "github.com/browserd/browserd"
)

// webhookService is what the /v1/webhooks endpoints call; a *webhooks.Service
// (internal/webhooks) satisfies it.
type webhookService interface {
	AllowHTTP() bool
	CreateWebhook(ctx context.Context, projectID string, req bb.WebhookRequest) (*bb.Webhook, string, error)
	Webhook(ctx context.Context, projectID, id string) (*bb.Webhook, error)
	Webhooks(ctx context.Context, projectID string, after *bb.PageCursor, limit int) ([]*bb.Webhook, *bb.PageCursor, error)
	UpdateWebhook(ctx context.Context, projectID, id string, req bb.WebhookRequest) (*bb.Webhook, error)
	DeleteWebhook(ctx context.Context, projectID, id string) error
	RotateWebhookSecret(ctx context.Context, projectID, id string, revokeImmediately bool) (string, error)
	WebhookDeliveries(ctx context.Context, projectID, id string, after *bb.PageCursor, limit int) ([]*bb.WebhookDelivery, *bb.PageCursor, error)
}

// wireWebhook is the SDK's Webhook (resources/webhooks.d.ts); the secret only on create.
type wireWebhook struct {
	ID         string         `json:"id"`
	CreatedAt  string         `json:"createdAt"`
	Endpoint   string         `json:"endpoint"`
	EventTypes []bb.EventType `json:"eventTypes"`
	ProjectID  string         `json:"projectId"`
	UpdatedAt  string         `json:"updatedAt"`
	Secret     string         `json:"secret,omitempty"`
}

// wirePage is the SDK's WebhookListResponse, and the deliveries list's shape.
type wirePage[T any] struct {
	Data       []T     `json:"data"`
	Limit      int     `json:"limit"`
	NextCursor *string `json:"nextCursor"`
}

// wireDelivery is one delivery of GET /v1/webhooks/{id}/deliveries (a browserd
// extension, docs/COMPATIBILITY.md "Webhooks").
type wireDelivery struct {
	ID            string          `json:"id"`
	WebhookID     string          `json:"webhookId"`
	EventID       string          `json:"eventId"`
	EventType     bb.EventType    `json:"eventType"`
	Status        string          `json:"status"`
	CreatedAt     string          `json:"createdAt"`
	NextAttemptAt *string         `json:"nextAttemptAt"`
	Attempts      []wireAttempt   `json:"attempts"`
	Event         json.RawMessage `json:"event"`
}

type wireAttempt struct {
	Attempt    int     `json:"attempt"`
	At         string  `json:"at"`
	DurationMs int64   `json:"durationMs"`
	StatusCode *int    `json:"statusCode"`
	Error      *string `json:"error"`
}

func toWireWebhook(w *bb.Webhook, secret string) wireWebhook {
	types := w.EventTypes
	if types == nil {
		types = []bb.EventType{}
	}
	return wireWebhook{ID: w.ID, CreatedAt: formatTime(w.CreatedAt), Endpoint: w.Endpoint, EventTypes: types,
		ProjectID: w.ProjectID, UpdatedAt: formatTime(w.UpdatedAt), Secret: secret}
}

func toWireDelivery(d *bb.WebhookDelivery) wireDelivery {
	out := wireDelivery{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType,
		Status: string(d.Status), CreatedAt: formatTime(d.CreatedAt), Attempts: make([]wireAttempt, len(d.Attempts))}
	if !d.NextAttemptAt.IsZero() {
		t := formatTime(d.NextAttemptAt)
		out.NextAttemptAt = &t
	}
	if json.Valid(d.Payload) {
		out.Event = d.Payload
	}
	for i, a := range d.Attempts {
		wa := wireAttempt{Attempt: i + 1, At: formatTime(a.At), DurationMs: a.Duration.Milliseconds()}
		if a.StatusCode != 0 {
			wa.StatusCode = &a.StatusCode
		}
		if a.Error != "" {
			wa.Error = &a.Error
		}
		out.Attempts[i] = wa
	}
	return out
}

func page[T any](data []T, limit int, next *bb.PageCursor) wirePage[T] {
	p := wirePage[T]{Data: data, Limit: limit}
	if next != nil {
		c := next.Encode()
		p.NextCursor = &c
	}
	return p
}

// errWebhooksOff answers the webhook endpoints of a server without Config.Webhooks.
var errWebhooksOff = &statusError{status: http.StatusNotImplemented, msg: "webhooks are not configured on this browserd server"}

// pageQuery reads the cursor and limit query parameters of a list.
func pageQuery(r *http.Request) (*bb.PageCursor, int, error) {
	q := r.URL.Query()
	after, err := bb.ParsePageCursor(q.Get("cursor"))
	if err != nil {
		return nil, 0, err
	}
	limit, err := bb.ParsePageLimit(q.Get("limit"))
	return after, limit, err
}

// handleCreateWebhook serves POST /v1/webhooks: 201 with the webhook and its secret.
func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeBody(s, w, r, func(b []byte) (bb.WebhookRequest, error) {
		return bb.DecodeWebhookRequest(b, true, s.webhooks.AllowHTTP())
	})
	if !ok {
		return
	}
	hook, secret, err := s.webhooks.CreateWebhook(r.Context(), projectIDOf(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, toWireWebhook(hook, secret))
}

// handleListWebhooks serves GET /v1/webhooks?cursor=&limit=: newest first.
func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request) {
	after, limit, err := pageQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hooks, next, err := s.webhooks.Webhooks(r.Context(), projectIDOf(r.Context()), after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := make([]wireWebhook, len(hooks))
	for i, hook := range hooks {
		data[i] = toWireWebhook(hook, "")
	}
	s.writeJSON(w, r, http.StatusOK, page(data, limit, next))
}

// handleGetWebhook serves GET /v1/webhooks/{id}, without the secret.
func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request) {
	hook, err := s.webhooks.Webhook(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireWebhook(hook, ""))
}

// handleUpdateWebhook serves PATCH /v1/webhooks/{id}: omitted fields stay.
func (s *Server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeBody(s, w, r, func(b []byte) (bb.WebhookRequest, error) {
		return bb.DecodeWebhookRequest(b, false, s.webhooks.AllowHTTP())
	})
	if !ok {
		return
	}
	hook, err := s.webhooks.UpdateWebhook(r.Context(), projectIDOf(r.Context()), r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireWebhook(hook, ""))
}

// handleDeleteWebhook serves DELETE /v1/webhooks/{id}: 204.
func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.webhooks.DeleteWebhook(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRotateWebhookSecret serves POST /v1/webhooks/{id}/secret: {"secret": …}.
func (s *Server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	revoke, ok := decodeBody(s, w, r, bb.DecodeRotateSecretRequest)
	if !ok {
		return
	}
	secret, err := s.webhooks.RotateWebhookSecret(r.Context(), projectIDOf(r.Context()), r.PathValue("id"), revoke)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"secret": secret})
}

// handleWebhookDeliveries serves GET /v1/webhooks/{id}/deliveries?cursor=&limit=, a
// browserd extension: the webhook's deliveries, newest first, each with its attempts.
func (s *Server) handleWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	after, limit, err := pageQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, next, err := s.webhooks.WebhookDeliveries(r.Context(), projectIDOf(r.Context()), r.PathValue("id"), after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := make([]wireDelivery, len(ds))
	for i, d := range ds {
		data[i] = toWireDelivery(d)
	}
	s.writeJSON(w, r, http.StatusOK, page(data, limit, next))
}

// webhookRoutes are the /v1/webhooks endpoints (SDK 2.21 resources/webhooks).
func (s *Server) webhookRoutes() []route {
	return []route{
		{http.MethodPost, "/v1/webhooks", s.handleCreateWebhook},
		{http.MethodGet, "/v1/webhooks", s.handleListWebhooks},
		{http.MethodGet, "/v1/webhooks/{id}", s.handleGetWebhook},
		{http.MethodPatch, "/v1/webhooks/{id}", s.handleUpdateWebhook},
		{http.MethodDelete, "/v1/webhooks/{id}", s.handleDeleteWebhook},
		{http.MethodPost, "/v1/webhooks/{id}/secret", s.handleRotateWebhookSecret},
		{http.MethodGet, "/v1/webhooks/{id}/deliveries", s.handleWebhookDeliveries},
	}
}
