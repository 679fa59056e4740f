package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// CreateSession creates a session (POST /v1/sessions, spec §3.1) and returns it with its
// connection fields. req is the request body, anything that encodes to the JSON object of
// spec §3.1: a map, a struct with the spec's field names, or a json.RawMessage. The
// client has no request struct of its own because callers pass bodies through
// (`browserd sessions create --body`, the bench's fixed bodies) and a struct would drop
// the fields it does not know.
func (c *Client) CreateSession(ctx context.Context, req any) (*Session, error) {
	var s Session
	if err := c.call(ctx, http.MethodPost, "/v1/sessions", nil, req, http.StatusCreated, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Session returns a session (GET /v1/sessions/{id}, spec §3.3).
func (c *Client) Session(ctx context.Context, id string) (*Session, error) {
	var s Session
	if err := c.call(ctx, http.MethodGet, "/v1/sessions/"+pathID(id), nil, nil, http.StatusOK, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// SessionFilter selects the sessions Sessions lists; the zero value lists all.
type SessionFilter struct {
	Status string // PENDING, RUNNING, ERROR, TIMED_OUT or COMPLETED; "" for all
	Q      string // a user metadata query, e.g. user_metadata['env']:'prod' (spec §5.8)
}

// Sessions lists the project's sessions (GET /v1/sessions, spec §3.2).
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Q != "" {
		q.Set("q", f.Q)
	}
	var ss []Session
	if err := c.call(ctx, http.MethodGet, "/v1/sessions", q, nil, http.StatusOK, &ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// ReleaseSession asks the server to end a session (POST /v1/sessions/{id} with status
// REQUEST_RELEASE, spec §3.4, §5.4) and returns it as the answer shows it.
func (c *Client) ReleaseSession(ctx context.Context, id string) (*Session, error) {
	var s Session
	body := map[string]string{"status": "REQUEST_RELEASE"} // the only update status (spec §2.1)
	if err := c.call(ctx, http.MethodPost, "/v1/sessions/"+pathID(id), nil, body, http.StatusOK, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DebugOptions are the query parameters of SessionDebug; the zero value asks for the
// defaults.
type DebugOptions struct {
	ExpiresIn int  // lifetime of the URLs in seconds; 0: the session's
	ReadOnly  bool // URLs that can watch the browser but not control it
}

// SessionDebug returns a running session's live view and DevTools URLs
// (GET /v1/sessions/{id}/debug, spec §3.5); an ended session answers 410.
func (c *Client) SessionDebug(ctx context.Context, id string, o DebugOptions) (*LiveURLs, error) {
	q := url.Values{}
	if o.ExpiresIn != 0 {
		q.Set("expiresIn", strconv.Itoa(o.ExpiresIn))
	}
	if o.ReadOnly {
		q.Set("readOnly", "true")
	}
	var lv LiveURLs
	if err := c.call(ctx, http.MethodGet, "/v1/sessions/"+pathID(id)+"/debug", q, nil, http.StatusOK, &lv); err != nil {
		return nil, err
	}
	return &lv, nil
}

// SessionLogs returns a session's CDP log (GET /v1/sessions/{id}/logs, spec §3.7).
func (c *Client) SessionLogs(ctx context.Context, id string) ([]SessionLog, error) {
	var logs []SessionLog
	if err := c.call(ctx, http.MethodGet, "/v1/sessions/"+pathID(id)+"/logs", nil, nil, http.StatusOK, &logs); err != nil {
		return nil, err
	}
	return logs, nil
}

// SessionRecording returns a session's rrweb events (GET /v1/sessions/{id}/recording,
// spec §3.8).
func (c *Client) SessionRecording(ctx context.Context, id string) ([]RecordingEvent, error) {
	var events []RecordingEvent
	if err := c.call(ctx, http.MethodGet, "/v1/sessions/"+pathID(id)+"/recording", nil, nil, http.StatusOK, &events); err != nil {
		return nil, err
	}
	return events, nil
}

// SessionDownloads starts reading the ZIP of a session's downloads
// (GET /v1/sessions/{id}/downloads, spec §3.6) and returns its body, which the caller
// reads (while ctx lives) and closes, and its size (-1 when the server does not say).
// The ZIP is streamed, not buffered: it may be large.
func (c *Client) SessionDownloads(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/sessions/" + pathID(id) + "/downloads", want: http.StatusOK})
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// UploadSessionFile streams r to a session as the file name (POST
// /v1/sessions/{id}/uploads, spec §3.9); the browser finds it in /tmp/.uploads/<name>.
// r is not read after the call returns.
func (c *Client) UploadSessionFile(ctx context.Context, id, name string, r io.Reader) (*Uploaded, error) {
	var u Uploaded
	if err := c.upload(ctx, "/v1/sessions/"+pathID(id)+"/uploads", name, r, http.StatusOK, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
