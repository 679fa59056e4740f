package httpapi

import (
	"bytes"
	"encoding/json"
	"time"

	bb "github.com/browserd/browserd"
)

// timeFormat is RFC 3339 in UTC with milliseconds, always with a zone (spec §1.4):
// 2026-05-03T12:53:37.151Z.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// formatTime formats t for the wire; the zero time is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// wireError is the error body of spec §1.5: the Fastify shape plus the OpenAPI `code`.
type wireError struct {
	StatusCode int    `json:"statusCode"`
	Code       int    `json:"code"`
	Error      string `json:"error"`
	Message    string `json:"message"`
}

// wireSession is the Session object of spec §2.2.
type wireSession struct {
	ID           string           `json:"id"`
	CreatedAt    string           `json:"createdAt"`
	UpdatedAt    string           `json:"updatedAt"`
	ProjectID    string           `json:"projectId"`
	StartedAt    string           `json:"startedAt"`
	ExpiresAt    string           `json:"expiresAt"`
	EndedAt      string           `json:"endedAt,omitempty"`
	Status       bb.SessionStatus `json:"status"`
	ProxyBytes   int64            `json:"proxyBytes"`
	KeepAlive    bool             `json:"keepAlive"`
	Region       bb.Region        `json:"region"`
	ContextID    string           `json:"contextId,omitempty"`
	UserMetadata json.RawMessage  `json:"userMetadata,omitempty"`
	AvgCPUUsage  *int64           `json:"avgCpuUsage,omitempty"`
	MemoryUsage  *int64           `json:"memoryUsage,omitempty"`
}

// wireSessionConnect is a SessionCreateResponse (spec §2.3), where the connection fields
// are always set, or a SessionRetrieveResponse (§2.4), where they are set only while
// the session is connectable.
type wireSessionConnect struct {
	wireSession
	ConnectURL        string `json:"connectUrl,omitempty"`
	SeleniumRemoteURL string `json:"seleniumRemoteUrl,omitempty"`
	SigningKey        string `json:"signingKey,omitempty"`
}

// wireProject is the Project object of spec §2.11.
type wireProject struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OwnerID        string `json:"ownerId"`
	DefaultTimeout int    `json:"defaultTimeout"`
	Concurrency    int    `json:"concurrency"`
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
}

// wireUsage is the ProjectUsage object of spec §2.12.
type wireUsage struct {
	BrowserMinutes int64 `json:"browserMinutes"`
	ProxyBytes     int64 `json:"proxyBytes"`
}

func toWireSession(s *bb.Session) wireSession {
	w := wireSession{
		ID:          s.ID,
		CreatedAt:   formatTime(s.CreatedAt),
		UpdatedAt:   formatTime(s.UpdatedAt),
		ProjectID:   s.ProjectID,
		StartedAt:   formatTime(s.StartedAt),
		ExpiresAt:   formatTime(s.ExpiresAt),
		EndedAt:     formatTime(s.EndedAt),
		Status:      s.Status,
		ProxyBytes:  s.ProxyBytes,
		KeepAlive:   s.KeepAlive,
		Region:      s.Region,
		ContextID:   s.ContextID,
		AvgCPUUsage: s.AvgCPUUsage,
		MemoryUsage: s.MemoryUsage,
	}
	if md := bytes.TrimSpace(s.UserMetadata); len(md) > 0 && !bytes.Equal(md, []byte("null")) {
		w.UserMetadata = md
	}
	if w.Region == "" {
		w.Region = bb.RegionUSWest2 // clients reject any value but the four regions
	}
	return w
}

func toWireSessions(ss []*bb.Session) []wireSession {
	out := make([]wireSession, 0, len(ss)) // [] rather than null when empty
	for _, s := range ss {
		out = append(out, toWireSession(s))
	}
	return out
}

func toWireProject(p *bb.Project) wireProject {
	return wireProject{
		ID:             p.ID,
		Name:           p.Name,
		OwnerID:        p.OwnerID,
		DefaultTimeout: p.DefaultTimeout,
		Concurrency:    p.Concurrency,
		CreatedAt:      formatTime(p.CreatedAt),
		UpdatedAt:      formatTime(p.UpdatedAt),
	}
}

func toWireProjects(ps []*bb.Project) []wireProject {
	out := make([]wireProject, 0, len(ps))
	for _, p := range ps {
		out = append(out, toWireProject(p))
	}
	return out
}

func toWireUsage(u bb.ProjectUsage) wireUsage {
	return wireUsage{BrowserMinutes: u.BrowserMinutes, ProxyBytes: u.ProxyBytes}
}

// wireFetch is the answer of POST /v1/fetch (SDK 2.21 FetchAPICreateResponse).
type wireFetch struct {
	ID string `json:"id"`
	// Content is a string (raw, markdown) or the extracted JSON value (json).
	Content     any               `json:"content"`
	ContentType string            `json:"contentType"`
	Encoding    string            `json:"encoding"`
	Headers     map[string]string `json:"headers"`
	StatusCode  int               `json:"statusCode"`
}

func toWireFetch(r *bb.FetchResult) wireFetch {
	w := wireFetch{ID: r.ID, Content: r.Content, ContentType: r.ContentType, Encoding: r.Encoding, Headers: r.Headers, StatusCode: r.StatusCode}
	if r.Extracted != nil {
		w.Content = r.Extracted
	}
	if w.Headers == nil {
		w.Headers = map[string]string{}
	}
	return w
}
