package browserd

import (
	"encoding/json"
	"time"
)

// SessionStatus is the status of a session (spec §2.1, §5.1).
type SessionStatus string

// Session statuses.
const (
	StatusPending   SessionStatus = "PENDING"
	StatusRunning   SessionStatus = "RUNNING"
	StatusError     SessionStatus = "ERROR"
	StatusTimedOut  SessionStatus = "TIMED_OUT"
	StatusCompleted SessionStatus = "COMPLETED"
)

// Terminal reports whether no transition leaves s.
func (s SessionStatus) Terminal() bool {
	return s == StatusError || s == StatusTimedOut || s == StatusCompleted
}

// ParseStatus parses an exact, upper-case session status.
func ParseStatus(s string) (SessionStatus, error) {
	switch st := SessionStatus(s); st {
	case StatusPending, StatusRunning, StatusError, StatusTimedOut, StatusCompleted:
		return st, nil
	}
	return "", Errorf(CodeInvalid, "status must be one of PENDING, RUNNING, ERROR, TIMED_OUT, COMPLETED")
}

// Region is where a session runs. browserd runs on one site, but clients validate that
// the field is one of these four values (spec §2.1), so it is always echoed.
type Region string

// Regions.
const (
	RegionUSWest2      Region = "us-west-2"
	RegionUSEast1      Region = "us-east-1"
	RegionEUCentral1   Region = "eu-central-1"
	RegionAPSoutheast1 Region = "ap-southeast-1"
)

// Valid reports whether r is one of the four regions.
func (r Region) Valid() bool {
	switch r {
	case RegionUSWest2, RegionUSEast1, RegionEUCentral1, RegionAPSoutheast1:
		return true
	}
	return false
}

// Session is one browser session.
type Session struct {
	ID        string
	ProjectID string
	Status    SessionStatus
	CreatedAt time.Time
	UpdatedAt time.Time
	StartedAt time.Time
	ExpiresAt time.Time
	EndedAt   time.Time // zero while live
	// EndReason says why a session ended ("released", "timeout", "crash: …"); internal.
	EndReason string

	KeepAlive  bool
	Region     Region
	Timeout    int // seconds
	ProxyBytes int64
	ContextID  string
	// ExtensionID is the extension the session runs with, from the top level or browserSettings.
	ExtensionID string

	// UserMetadata is the JSON object given at creation, stored verbatim; nil when none.
	UserMetadata json.RawMessage
	// BrowserSettings is the browserSettings object given at creation, stored verbatim
	// (unknown fields included); nil when none. Settings holds its parsed known fields.
	BrowserSettings json.RawMessage
	Settings        BrowserSettings
	// Request is the whole create request body, stored verbatim so later versions can act
	// on fields this one does not know.
	Request json.RawMessage

	// NodeID is the node whose process owns the browser; PID its main process.
	NodeID string
	PID    int

	// CPU and memory of the browser process tree, when measured (spec §2.2, legacy).
	AvgCPUUsage *int64
	MemoryUsage *int64
}

// Live reports whether the session has not ended.
func (s *Session) Live() bool { return !s.Status.Terminal() }

// Viewport is a browser viewport size in CSS pixels.
type Viewport struct {
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// ContextSettings attaches a persisted context to a session (spec §3.1).
type ContextSettings struct {
	ID      string `json:"id"`
	Persist bool   `json:"persist,omitempty"`
}

// BrowserSettings holds the known fields of a create request's browserSettings (spec
// §3.1). Pointers distinguish "absent" from the zero value where the default is not zero.
type BrowserSettings struct {
	Context                 *ContextSettings `json:"context,omitempty"`
	ExtensionID             string           `json:"extensionId,omitempty"`
	Viewport                *Viewport        `json:"viewport,omitempty"`
	BlockAds                bool             `json:"blockAds,omitempty"`
	SolveCaptchas           *bool            `json:"solveCaptchas,omitempty"`
	CaptchaImageSelector    string           `json:"captchaImageSelector,omitempty"`
	CaptchaInputSelector    string           `json:"captchaInputSelector,omitempty"`
	RecordSession           *bool            `json:"recordSession,omitempty"`
	LogSession              *bool            `json:"logSession,omitempty"`
	AdvancedStealth         bool             `json:"advancedStealth,omitempty"`
	Verified                bool             `json:"verified,omitempty"`
	OS                      string           `json:"os,omitempty"`
	AllowedDomains          []string         `json:"allowedDomains,omitempty"`
	IgnoreCertificateErrors bool             `json:"ignoreCertificateErrors,omitempty"`
	Fingerprint             json.RawMessage  `json:"fingerprint,omitempty"`
}

// LogSessionEnabled reports whether CDP logs are kept (default true).
func (b BrowserSettings) LogSessionEnabled() bool { return b.LogSession == nil || *b.LogSession }

// RecordSessionEnabled reports whether the session is recorded; def is the server default.
func (b BrowserSettings) RecordSessionEnabled(def bool) bool {
	if b.RecordSession == nil {
		return def
	}
	return *b.RecordSession
}

// SessionFilter selects sessions for a list.
type SessionFilter struct {
	ProjectID string
	Status    SessionStatus  // "" for any
	Metadata  *MetadataQuery // nil for any
	NodeID    string         // "" for any node
	LiveOnly  bool           // only PENDING and RUNNING
	// EndedSince, when set, keeps the sessions live at or after it: not ended, or ended
	// at or after it (the dashboard's charts of recent days read no older history).
	EndedSince time.Time
}
