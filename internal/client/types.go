package client

import "encoding/json"

// Session is a Session object (spec §2.2) together with the connection fields of a
// create (§2.3, always set) or get (§2.4, set while the session is connectable) answer.
// Times are RFC 3339 strings as the server sent them; "" when absent.
type Session struct {
	ID           string          `json:"id"`
	CreatedAt    string          `json:"createdAt"`
	UpdatedAt    string          `json:"updatedAt"`
	ProjectID    string          `json:"projectId"`
	StartedAt    string          `json:"startedAt"`
	ExpiresAt    string          `json:"expiresAt"`
	EndedAt      string          `json:"endedAt"`
	Status       string          `json:"status"` // PENDING, RUNNING, ERROR, TIMED_OUT, COMPLETED
	ProxyBytes   int64           `json:"proxyBytes"`
	KeepAlive    bool            `json:"keepAlive"`
	Region       string          `json:"region"`
	ContextID    string          `json:"contextId"`
	UserMetadata json.RawMessage `json:"userMetadata"` // the object given at creation, as sent
	AvgCPUUsage  *int64          `json:"avgCpuUsage"`  // legacy, optional: percent of a core
	MemoryUsage  *int64          `json:"memoryUsage"`  // legacy, optional: bytes

	ConnectURL        string `json:"connectUrl"`
	SeleniumRemoteURL string `json:"seleniumRemoteUrl"`
	SigningKey        string `json:"signingKey"`
}

// LiveURLs is a SessionLiveURLs object (spec §2.5): the live view and DevTools of a
// running session.
type LiveURLs struct {
	DebuggerFullscreenURL string `json:"debuggerFullscreenUrl"`
	DebuggerURL           string `json:"debuggerUrl"`
	WSURL                 string `json:"wsUrl"`
	Pages                 []Page `json:"pages"`
}

// Page is one open tab of LiveURLs (spec §2.5).
type Page struct {
	ID                    string `json:"id"` // the CDP target id
	URL                   string `json:"url"`
	Title                 string `json:"title"`
	FaviconURL            string `json:"faviconUrl"`
	DebuggerURL           string `json:"debuggerUrl"`
	DebuggerFullscreenURL string `json:"debuggerFullscreenUrl"`
}

// SessionLog is one element of a session's logs (spec §2.6): a CDP command and its
// answer, or an event.
type SessionLog struct {
	Method    string      `json:"method"`
	PageID    int         `json:"pageId"`
	SessionID string      `json:"sessionId"`
	Timestamp int64       `json:"timestamp"` // ms since the epoch; 0 when absent
	FrameID   string      `json:"frameId"`
	LoaderID  string      `json:"loaderId"`
	Request   *LogMessage `json:"request"`
	Response  *LogMessage `json:"response"`
}

// LogMessage is the request or response of a SessionLog (spec §2.6). Result is an
// object (an error answer's has the key "error"); Params are kept as sent.
type LogMessage struct {
	Params    json.RawMessage            `json:"params"`
	Result    map[string]json.RawMessage `json:"result"`
	RawBody   string                     `json:"rawBody"`
	Timestamp int64                      `json:"timestamp"` // ms since the epoch; 0 when absent
}

// RecordingEvent is one rrweb event of a session's recording (spec §2.7).
type RecordingEvent struct {
	Data      json.RawMessage `json:"data"`
	SessionID string          `json:"sessionId"`
	Timestamp int64           `json:"timestamp"` // ms since the epoch
	Type      int             `json:"type"`      // rrweb numbering: 2 FullSnapshot, 3 IncrementalSnapshot, …
}

// Uploaded is the answer of a session upload (spec §3.9).
type Uploaded struct {
	Message string `json:"message"`
}

// Context is a Context object (spec §2.8).
type Context struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	ProjectID string `json:"projectId"`
	Name      string `json:"name"`
}

// ContextKeys is a ContextCreateResponse (spec §2.9), also the answer of the deprecated
// update: the context's id and the legacy upload cipher.
type ContextKeys struct {
	ID                       string `json:"id"`
	CipherAlgorithm          string `json:"cipherAlgorithm"`
	InitializationVectorSize int    `json:"initializationVectorSize"`
	PublicKey                string `json:"publicKey"`
	UploadURL                string `json:"uploadUrl"`
}

// Extension is an Extension object (spec §2.10).
type Extension struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	FileName  string `json:"fileName"`
	ProjectID string `json:"projectId"`
}

// Project is a Project object (spec §2.11).
type Project struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OwnerID        string `json:"ownerId"`
	DefaultTimeout int    `json:"defaultTimeout"` // seconds
	Concurrency    int    `json:"concurrency"`
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
}

// ProjectUsage is a ProjectUsage object (spec §2.12).
type ProjectUsage struct {
	BrowserMinutes int64 `json:"browserMinutes"`
	ProxyBytes     int64 `json:"proxyBytes"`
}
