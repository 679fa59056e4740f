package liveview

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// This file is the session inspector (issue 19): a page whose script replays the
// session's recording beside its network requests, console and CDP commands, and the
// JSON routes under /ui/api/ it reads them from, a page of logs at a time and the
// recording as a stream, so that an hour-long session never becomes one response.

// artifactReader is what the inspector reads; *artifacts.Service satisfies it. Each
// method checks the session's project as the API does (another project's: not found).
type artifactReader interface {
	LogPage(ctx context.Context, projectID, id string, afterSeq int64, limit int) ([]bb.SessionLog, error)
	Recording(ctx context.Context, projectID, id string) (iter.Seq2[bb.RecordingEvent, error], error)
	Downloads(ctx context.Context, projectID, id string) ([]bb.BlobInfo, error)
	Uploads(ctx context.Context, projectID, id string) ([]bb.BlobInfo, error)
	File(ctx context.Context, projectID, id, kind, name string) (io.ReadCloser, error)
}

// Log page sizes of GET /ui/api/sessions/{id}/logs: the page's script asks for
// defaultLogPage; maxLogPage bounds one response.
const (
	defaultLogPage = 2000
	maxLogPage     = 5000
)

// tokenHeader carries the sign-in's token on the inspector's script requests. The
// cookie alone does not do for them: a script of the live view's origin (the same
// origin, security review F14) has the cookie sent too, but cannot read a dashboard
// page (scriptRequest), so it never learns the token. Not an X-Browserd-* name: a
// cluster's nodes drop those from clients' requests (only a peer may set them), which
// refused every inspector request that landed on a node other than the session's.
const tokenHeader = "X-Dashboard-Token"

// inspectorCSP is the inspector's and the project page's Content-Security-Policy.
// Scripts only from this server: the replay's iframe has the page's policy, so the
// recorded pages' scripts would not run even without the iframe's sandbox (which has
// no allow-scripts). Recorded pages keep their inline styles and their images and
// fonts (loaded from where the page had them, as rrweb's replayer does).
const inspectorCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob: http: https:; font-src 'self' data: http: https:; media-src 'self' blob:; " +
	"connect-src 'self'; frame-src 'self'; worker-src 'self' blob:; object-src 'none'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// lookupSignin returns the sign-in of the request's cookie, or nil.
func (s *Server) lookupSignin(r *http.Request) *signin {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	return s.signins.get(r.Context(), c.Value, time.Now())
}

// apiKey authenticates a request of the inspector's script: same origin, the sign-in's
// cookie and its token in tokenHeader. It writes the error and returns nil otherwise.
func (s *Server) apiKey(w http.ResponseWriter, r *http.Request) *bb.APIKey {
	_, key := s.apiSignin(w, r)
	return key
}

// apiSignin is apiKey with the sign-in, whose raw key calls the REST API (replays.go).
func (s *Server) apiSignin(w http.ResponseWriter, r *http.Request) (*signin, *bb.APIKey) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "the dashboard's data is read by the dashboard's pages only"))
		return nil, nil
	}
	si := s.lookupSignin(r)
	if si == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnauthorized, "sign in first"))
		return nil, nil
	}
	if !si.validCSRF(r.Header.Get(tokenHeader)) {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "the request's token is missing or wrong; reload the page"))
		return nil, nil
	}
	key, err := s.sessions.Authenticate(r.Context(), si.apiKey)
	if err != nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnauthorized, "sign in again"))
		return nil, nil
	}
	return si, key
}

func (s *Server) artifactsOrError(w http.ResponseWriter, r *http.Request) artifactReader {
	if s.cfg.Artifacts == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "session artifacts are not available here"))
	}
	return s.cfg.Artifacts
}

// keyAndArtifacts begins the inspector's data routes: the signed-in key (apiKey) and
// the artifacts to read; nil, nil when it answered the request with an error.
func (s *Server) keyAndArtifacts(w http.ResponseWriter, r *http.Request) (*bb.APIKey, artifactReader) {
	key := s.apiKey(w, r)
	if key == nil {
		return nil, nil
	}
	art := s.artifactsOrError(w, r)
	if art == nil {
		return nil, nil
	}
	return key, art
}

// writeData answers v as JSON, never cached.
func writeData(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client went away
}

// handleInspector serves the inspector page of a session (a navigation, signed in by
// the cookie like every page).
func (s *Server) handleInspector(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		redirect(w, "../../")
		return
	}
	sess, err := s.sessions.Session(r.Context(), key.ProjectID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Security-Policy", inspectorCSP)
	s.page(w, r, http.StatusOK, "inspector.html", "../../../", map[string]any{
		"CSRF": si.csrf, "Session": sess, "Title": "Inspector " + sess.ID + " · ", "Wide": true})
}

// inspectorLog is a SessionLog (spec §2.6) as the inspector reads it: with its Seq,
// the page cursor, and a message's rawBody only when it was cut (the params or result
// say the rest), which halves a large session's transfer.
type inspectorLog struct {
	Seq       int64         `json:"seq"`
	Method    string        `json:"method"`
	PageID    int           `json:"pageId"`
	Timestamp int64         `json:"timestamp,omitempty"`
	FrameID   string        `json:"frameId,omitempty"`
	LoaderID  string        `json:"loaderId,omitempty"`
	Request   *inspectorMsg `json:"request,omitempty"`
	Response  *inspectorMsg `json:"response,omitempty"`
}

type inspectorMsg struct {
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	RawBody   string          `json:"rawBody,omitempty"`
	Timestamp int64           `json:"timestamp,omitempty"`
}

func toInspectorMsg(m *bb.LogMessage, result bool) *inspectorMsg {
	if m == nil {
		return nil
	}
	out := &inspectorMsg{}
	body := m.Body
	if len(body) == 0 {
		body = json.RawMessage(`{}`)
	}
	if result {
		out.Result = body
	} else {
		out.Params = body
	}
	if strings.HasSuffix(m.Raw, bb.TruncationMarker) {
		out.RawBody = m.Raw
	}
	if !m.Timestamp.IsZero() {
		out.Timestamp = m.Timestamp.UnixMilli()
	}
	return out
}

func toInspectorLog(l bb.SessionLog) inspectorLog {
	out := inspectorLog{Seq: l.Seq, Method: l.Method, PageID: l.PageID, FrameID: l.FrameID, LoaderID: l.LoaderID,
		Request: toInspectorMsg(l.Request, false), Response: toInspectorMsg(l.Response, true)}
	if out.Request != nil {
		out.Timestamp = out.Request.Timestamp
	}
	return out
}

// parseLogQuery reads the after and limit of a log page request; bad values are
// CodeInvalid.
func parseLogQuery(q url.Values) (after int64, limit int, err error) {
	after, limit = 0, defaultLogPage
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, bb.Errorf(bb.CodeInvalid, "after must be a log's seq (a number, 0 or more)")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogPage {
			return 0, 0, bb.Errorf(bb.CodeInvalid, "limit must be a number from 1 to %d", maxLogPage)
		}
		limit = n
	}
	return after, limit, nil
}

// handleLogPage serves GET /ui/api/sessions/{id}/logs?after=SEQ&limit=N: up to N
// logs after SEQ, and next, the cursor of the following page (0 when there is none).
func (s *Server) handleLogPage(w http.ResponseWriter, r *http.Request) {
	key, art := s.keyAndArtifacts(w, r)
	if key == nil {
		return
	}
	after, limit, err := parseLogQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	logs, err := art.LogPage(r.Context(), key.ProjectID, r.PathValue("id"), after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Logs []inspectorLog `json:"logs"`
		Next int64          `json:"next"`
	}{Logs: make([]inspectorLog, 0, len(logs))}
	for _, l := range logs {
		out.Logs = append(out.Logs, toInspectorLog(l))
	}
	if len(logs) == limit {
		out.Next = logs[len(logs)-1].Seq
	}
	writeData(w, out)
}

// recordingFlush is how much of a recording stream is buffered before it is sent.
const recordingFlush = 256 << 10

// handleRecordingStream serves GET /ui/api/sessions/{id}/recording: the session's
// rrweb events as NDJSON, one event a line in time order, flushed as they are read, so
// that the page starts the replay with the first snapshot while the rest arrives. A
// read error after the first byte ends the stream with a line {"error": "…"}.
func (s *Server) handleRecordingStream(w http.ResponseWriter, r *http.Request) {
	key, art := s.keyAndArtifacts(w, r)
	if key == nil {
		return
	}
	events, err := art.Recording(r.Context(), key.ProjectID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, recordingFlush+4096)
	enc := json.NewEncoder(bw)
	for ev, err := range events {
		if err != nil {
			s.log.ErrorContext(r.Context(), "read recording", "session_id", r.PathValue("id"), "err", err)
			_ = enc.Encode(map[string]string{"error": "the recording could not be read to its end"})
			break
		}
		data := ev.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		if enc.Encode(bb.RecordingEvent{Type: ev.Type, Timestamp: ev.Timestamp, Data: data}) != nil {
			return // the client went away
		}
		if bw.Buffered() >= recordingFlush {
			if bw.Flush() != nil {
				return
			}
			_ = rc.Flush() // unsupported only by writers that buffer all anyway
		}
	}
	_ = bw.Flush() // the end of the response: a failure means the client left
}

// inspectorFile is a download or upload as the inspector lists it.
type inspectorFile struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

func toInspectorFiles(list []bb.BlobInfo) []inspectorFile {
	out := make([]inspectorFile, 0, len(list))
	for _, b := range list {
		out = append(out, inspectorFile{Name: path.Base(b.Key), Size: b.Size, Modified: b.ModTime.UTC()})
	}
	return out
}

// handleFiles serves GET /ui/api/sessions/{id}/files: the session's downloads and
// uploads (each links to handleFile).
func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) {
	key, art := s.keyAndArtifacts(w, r)
	if key == nil {
		return
	}
	id := r.PathValue("id")
	downloads, err := art.Downloads(r.Context(), key.ProjectID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	uploads, err := art.Uploads(r.Context(), key.ProjectID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeData(w, map[string]any{"downloads": toInspectorFiles(downloads), "uploads": toInspectorFiles(uploads)})
}

// handleFile serves one download or upload of a session to a signed-in navigation (a
// link), always as an attachment: the file is the browsed sites' content.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnauthorized, "sign in first"))
		return
	}
	art := s.artifactsOrError(w, r)
	if art == nil {
		return
	}
	name := r.PathValue("name")
	f, err := art.File(r.Context(), key.ProjectID, r.PathValue("id"), r.PathValue("kind"), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "no-store")
	_, _ = io.Copy(w, f) // the status is sent: a failure means the client left
}
