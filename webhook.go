package browserd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EventType names something that happens to a session, as a webhook subscribes to it
// and as the "type" of a delivered event. The SDK 2.21 lists only Browserbase Functions'
// types (functions.builds.*, functions.invocations.*), which browserd does not have;
// browserd's own follow their pattern, <resource>.<subresource>.<state>
// (docs/COMPATIBILITY.md, "Webhooks").
type EventType string

// Event types.
const (
	// EventSessionCreated: a create was recorded (PENDING), before the browser starts.
	EventSessionCreated EventType = "sessions.created"
	// EventSessionRunning: the browser is ready and the session RUNNING.
	EventSessionRunning EventType = "sessions.running"
	// EventSessionEnded: the session ended; the event carries its final status and reason.
	EventSessionEnded EventType = "sessions.ended"
	// EventNavigationBlocked: allowedDomains blocked a main-frame navigation.
	EventNavigationBlocked EventType = "sessions.navigations.blocked"
	// EventDownloadCompleted: a file the browser downloaded was saved (spec §6.6).
	EventDownloadCompleted EventType = "sessions.downloads.completed"
)

// EventTypes lists every event type, in the order the documentation gives them.
var EventTypes = []EventType{EventSessionCreated, EventSessionRunning, EventSessionEnded,
	EventNavigationBlocked, EventDownloadCompleted}

// Event is something that happened to a session, as the places it happens report it
// (the Manager, the emulation agent, the artifacts) to an EventSink.
type Event struct {
	Type      EventType
	ProjectID string
	SessionID string
	At        time.Time
	// Session is the record as stored, for the sessions.created, .running and .ended
	// events (Status and EndReason are the final ones for .ended).
	Session *Session
	// URL is the navigation allowedDomains blocked.
	URL string
	// FileName and Size describe a saved download.
	FileName string
	Size     int64
}

// EventSink takes the events of sessions, for webhooks (internal/webhooks). Emit is
// called on the session's own paths (after the store write that made the event true)
// and must never block them.
type EventSink interface {
	Emit(e Event)
}

// Webhook is a project's delivery endpoint (SDK 2.21 resources/webhooks): browserd POSTs
// a signed event to Endpoint whenever one of EventTypes happens in the project.
type Webhook struct {
	ID         string
	ProjectID  string
	Endpoint   string
	EventTypes []EventType
	// Secret is the signing secret sealed with the server's webhook key
	// (internal/webhooks); the store never sees it in the clear.
	Secret []byte
	// PreviousSecret, sealed, still signs deliveries until PreviousExpiresAt after a
	// rotation (a 24 h overlap unless revoked at once); nil when there is none.
	PreviousSecret    []byte
	PreviousExpiresAt time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// DeliveryStatus is where a webhook delivery is.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryPending waits for its next attempt.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered got a 2xx answer.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed was retried for the whole retry window without a 2xx answer.
	DeliveryFailed DeliveryStatus = "failed"
)

// WebhookDelivery is one event to deliver to one webhook: a row of the durable outbox.
type WebhookDelivery struct {
	ID        string
	WebhookID string
	ProjectID string
	EventID   string
	EventType EventType
	// Payload is the exact body POSTed (and signed), fixed when the event happened.
	Payload       []byte
	Status        DeliveryStatus
	Attempts      []WebhookAttempt
	CreatedAt     time.Time
	NextAttemptAt time.Time // zero once delivered or failed
}

// WebhookAttempt is one POST of a delivery.
type WebhookAttempt struct {
	At         time.Time     `json:"at"`
	Duration   time.Duration `json:"duration"`
	StatusCode int           `json:"statusCode,omitempty"` // 0 when no answer came
	Error      string        `json:"error,omitempty"`      // why it was not a 2xx answer
}

// WebhookEvent is an event ready for the outbox: its id, and the body every subscribed
// webhook gets.
type WebhookEvent struct {
	ID        string
	ProjectID string
	Type      EventType
	Payload   []byte
	CreatedAt time.Time
}

// PageCursor is a position in a list ordered newest first by (CreatedAt, ID): the list
// goes on after it. Its wire form (Encode, ParsePageCursor) is opaque to clients.
type PageCursor struct {
	CreatedAt time.Time
	ID        string
}

// WebhookStore keeps webhooks and their durable outbox of deliveries. internal/sqlite
// and internal/postgres implement it and pass internal/storetest.
type WebhookStore interface {
	// CreateWebhook inserts w. An endpoint the project has already registered is a
	// CodeConflict error with NoRetry (the SDK: "may only be registered once").
	CreateWebhook(ctx context.Context, w *Webhook) error
	// Webhook returns a webhook by id, or CodeNotFound.
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// Webhooks returns up to limit webhooks of a project, newest first, after the cursor
	// (nil: from the newest).
	Webhooks(ctx context.Context, projectID string, after *PageCursor, limit int) ([]*Webhook, error)
	// UpdateWebhook reads, changes with fn and writes a webhook in one transaction; fn's
	// error aborts and is returned. Id, project and creation time can't change.
	UpdateWebhook(ctx context.Context, id string, fn func(*Webhook) error) (*Webhook, error)
	// DeleteWebhook deletes a webhook and its deliveries, or returns CodeNotFound.
	DeleteWebhook(ctx context.Context, id string) error
	// EnqueueWebhookEvent adds a pending delivery of e, due now, for every webhook of
	// e's project that subscribes to e's type, in one transaction, and returns how many.
	// Enqueueing the same event id twice adds nothing the second time.
	EnqueueWebhookEvent(ctx context.Context, e *WebhookEvent) (int, error)
	// ClaimWebhookDeliveries leases up to limit pending deliveries due at now to owner
	// until now+lease, oldest due first: while the lease runs no other claim (on any node)
	// returns them.
	ClaimWebhookDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*WebhookDelivery, error)
	// RecordWebhookAttempt appends a to a delivery's attempts and sets its status and
	// next attempt (zero when done), releasing its lease. A delivery that is gone (its
	// webhook deleted) is not an error.
	RecordWebhookAttempt(ctx context.Context, id string, a WebhookAttempt, status DeliveryStatus, next time.Time) error
	// WebhookDeliveries returns up to limit deliveries of a webhook, newest first,
	// after the cursor.
	WebhookDeliveries(ctx context.Context, webhookID string, after *PageCursor, limit int) ([]*WebhookDelivery, error)
	// PurgeWebhookDeliveries deletes the delivered and failed deliveries created before
	// t and returns how many.
	PurgeWebhookDeliveries(ctx context.Context, before time.Time) (int, error)
}

// Limits of the webhooks API.
const (
	// MaxWebhookEndpointLength bounds an endpoint URL, in bytes.
	MaxWebhookEndpointLength = 2048
	// DefaultWebhookPageLimit and MaxWebhookPageLimit bound a page of a list.
	DefaultWebhookPageLimit = 20
	MaxWebhookPageLimit     = 100
)

// DuplicateWebhookError is the error for an endpoint already registered in the project;
// not retried (the SDKs retry 409 by default, spec §1.5).
func DuplicateWebhookError(endpoint string) *Error {
	return &Error{Code: CodeConflict, NoRetry: true,
		Message: fmt.Sprintf("A webhook for endpoint %q already exists in this project", endpoint)}
}

// WebhookRequest is a decoded POST /v1/webhooks or PATCH /v1/webhooks/{id} body; nil
// fields were absent (a PATCH leaves them unchanged).
type WebhookRequest struct {
	Endpoint   *string
	EventTypes []EventType // nil when absent
}

// DecodeWebhookRequest decodes and checks a webhook body. create requires both fields.
// allowHTTP admits http:// endpoints (an operator's choice, for tests and development);
// otherwise only https:// is. Whether the endpoint's address is public is checked when
// a delivery connects, not here (a name resolves differently over time). Errors are
// CodeInvalid.
func DecodeWebhookRequest(body []byte, create, allowHTTP bool) (WebhookRequest, error) {
	var req WebhookRequest
	fields, err := decodeObject(body, "body")
	if err != nil {
		return req, err
	}
	if v, ok := fields["endpoint"]; ok && !isNull(v) {
		var s string
		if err := decodeField(v, "endpoint", "a string", &s); err != nil {
			return req, err
		}
		if s, err = CheckWebhookEndpoint(s, allowHTTP); err != nil {
			return req, err
		}
		req.Endpoint = &s
	}
	if v, ok := fields["eventTypes"]; ok && !isNull(v) {
		var ts []string
		if err := decodeField(v, "eventTypes", "an array of strings", &ts); err != nil {
			return req, err
		}
		if req.EventTypes, err = ParseEventTypes(ts); err != nil {
			return req, err
		}
	}
	if create && req.Endpoint == nil {
		return req, Errorf(CodeInvalid, "body/endpoint is required")
	}
	if create && req.EventTypes == nil {
		return req, Errorf(CodeInvalid, "body/eventTypes is required")
	}
	return req, nil
}

// CheckWebhookEndpoint checks an endpoint URL: absolute https (http with allowHTTP),
// a host, no user info or fragment, at most MaxWebhookEndpointLength bytes. It returns
// the URL as given.
func CheckWebhookEndpoint(s string, allowHTTP bool) (string, error) {
	if len(s) > MaxWebhookEndpointLength {
		return "", Errorf(CodeInvalid, "body/endpoint must not be longer than %d bytes", MaxWebhookEndpointLength)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return "", Errorf(CodeInvalid, "body/endpoint must be an absolute https:// URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return "", Errorf(CodeInvalid, "body/endpoint must be an https:// URL (the operator of this server can allow http:// with --webhook-allow-http)")
	default:
		return "", Errorf(CodeInvalid, "body/endpoint must be an https:// URL")
	}
	if u.User != nil || u.Fragment != "" || strings.ContainsAny(s, " \t\r\n") {
		return "", Errorf(CodeInvalid, "body/endpoint must not carry user info, a fragment or white space")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", Errorf(CodeInvalid, "body/endpoint has an invalid port")
		}
	}
	return s, nil
}

// ParseEventTypes checks a subscription: at least one type, each known, no duplicates
// (dropped, order kept).
func ParseEventTypes(ts []string) ([]EventType, error) {
	if len(ts) == 0 {
		return nil, Errorf(CodeInvalid, "body/eventTypes must name at least one event type")
	}
	out := make([]EventType, 0, len(ts))
	for i, t := range ts {
		et := EventType(t)
		if !slices.Contains(EventTypes, et) {
			if strings.HasPrefix(t, "functions.") {
				return nil, Errorf(CodeInvalid, "body/eventTypes/%d: %q is a Browserbase Functions event, and browserd has no Functions; its events are %s", i, t, eventTypeList())
			}
			return nil, Errorf(CodeInvalid, "body/eventTypes/%d: unknown event type %q; the event types are %s", i, t, eventTypeList())
		}
		if !slices.Contains(out, et) {
			out = append(out, et)
		}
	}
	return out, nil
}

func eventTypeList() string {
	names := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// Subscribes reports whether w gets events of type t.
func (w *Webhook) Subscribes(t EventType) bool { return slices.Contains(w.EventTypes, t) }

// Encode returns the cursor's opaque wire form.
func (c PageCursor) Encode() string {
	b, _ := json.Marshal([2]any{c.CreatedAt.UnixMilli(), c.ID}) // an int and a string always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParsePageCursor parses a cursor from Encode; "" is nil (the first page). Anything
// else is CodeInvalid.
func ParsePageCursor(s string) (*PageCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := Errorf(CodeInvalid, "query/cursor is not a cursor this server returned")
	if len(s) > 256 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var v [2]json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil || v[0] == nil || v[1] == nil {
		return nil, bad
	}
	var ms int64
	var id string
	if json.Unmarshal(v[0], &ms) != nil || json.Unmarshal(v[1], &id) != nil || !ValidID(id) || ms < 0 {
		return nil, bad
	}
	return &PageCursor{CreatedAt: time.UnixMilli(ms).UTC(), ID: id}, nil
}

// ParsePageLimit parses a list's limit query parameter: "" is DefaultWebhookPageLimit,
// else 1..MaxWebhookPageLimit.
func ParsePageLimit(s string) (int, error) {
	if s == "" {
		return DefaultWebhookPageLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxWebhookPageLimit {
		return 0, Errorf(CodeInvalid, "query/limit must be an integer between 1 and %d", MaxWebhookPageLimit)
	}
	return n, nil
}

// DecodeRotateSecretRequest decodes a POST /v1/webhooks/{id}/secret body
// ({"revokeImmediately": bool}, all optional; an empty body is {}).
func DecodeRotateSecretRequest(body []byte) (revokeImmediately bool, err error) {
	fields, err := decodeObject(body, "body")
	if err != nil {
		return false, err
	}
	if v, ok := fields["revokeImmediately"]; ok && !isNull(v) {
		if err := decodeField(v, "revokeImmediately", "a boolean", &revokeImmediately); err != nil {
			return false, err
		}
	}
	return revokeImmediately, nil
}
