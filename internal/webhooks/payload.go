package webhooks

import (
	"encoding/json"
	"time"

	bb "github.com/browserd/browserd"
)

// timeFormat is the API's time format (spec §1.4; internal/httpapi's).
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeFormat)
	return &s
}

// wireEvent is the body of every delivery (docs/COMPATIBILITY.md "Webhooks").
type wireEvent struct {
	ID        string   `json:"id"`
	Type      string   `json:"type"`
	CreatedAt *string  `json:"createdAt"`
	ProjectID string   `json:"projectId"`
	Data      wireData `json:"data"`
}

// wireData is the event's subject: its session, and what the type adds.
type wireData struct {
	SessionID string       `json:"sessionId"`
	Session   *wireSession `json:"session,omitempty"` // sessions.created, .running, .ended
	// Status and Reason are the session's final status and why it ended (sessions.ended).
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
	// URL is the navigation allowedDomains blocked.
	URL string `json:"url,omitempty"`
	// FileName and Size are a saved download's (GET /v1/sessions/{id}/downloads).
	FileName string `json:"fileName,omitempty"`
	Size     *int64 `json:"size,omitempty"`
}

// wireSession is the part of the Session object of spec §2.1 an event carries.
type wireSession struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`
	CreatedAt    *string         `json:"createdAt"`
	StartedAt    *string         `json:"startedAt"`
	EndedAt      *string         `json:"endedAt"`
	ExpiresAt    *string         `json:"expiresAt"`
	Region       string          `json:"region"`
	KeepAlive    bool            `json:"keepAlive"`
	ContextID    *string         `json:"contextId"`
	ProxyBytes   int64           `json:"proxyBytes"`
	UserMetadata json.RawMessage `json:"userMetadata,omitempty"`
}

// payload is the JSON body of an event with the given id.
func payload(id string, e bb.Event) ([]byte, error) {
	w := wireEvent{ID: id, Type: string(e.Type), CreatedAt: formatTime(e.At), ProjectID: e.ProjectID,
		Data: wireData{SessionID: e.SessionID, URL: e.URL, FileName: e.FileName}}
	if e.Type == bb.EventDownloadCompleted {
		w.Data.Size = &e.Size
	}
	if s := e.Session; s != nil {
		ws := &wireSession{ID: s.ID, Status: string(s.Status), CreatedAt: formatTime(s.CreatedAt),
			StartedAt: formatTime(s.StartedAt), EndedAt: formatTime(s.EndedAt), ExpiresAt: formatTime(s.ExpiresAt),
			Region: string(s.Region), KeepAlive: s.KeepAlive, ProxyBytes: s.ProxyBytes}
		if s.ContextID != "" {
			ws.ContextID = &s.ContextID
		}
		if json.Valid(s.UserMetadata) {
			ws.UserMetadata = s.UserMetadata
		}
		w.Data.Session = ws
		if e.Type == bb.EventSessionEnded {
			w.Data.Status, w.Data.Reason = string(s.Status), s.EndReason
		}
	}
	return json.Marshal(w)
}
