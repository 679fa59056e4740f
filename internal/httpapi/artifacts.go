package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"

	bb "github.com/browserd/browserd"
)

// artifactService serves the session artifact endpoints; *artifacts.Service (internal/artifacts) satisfies it.
type artifactService interface {
	Logs(ctx context.Context, projectID, id string) (iter.Seq2[bb.SessionLog, error], error)
	Recording(ctx context.Context, projectID, id string) (iter.Seq2[bb.RecordingEvent, error], error)
	Downloads(ctx context.Context, projectID, id string) ([]bb.BlobInfo, error)
	WriteZip(ctx context.Context, w io.Writer, files []bb.BlobInfo) error
	CanUpload(ctx context.Context, projectID, id string) error
	Upload(ctx context.Context, projectID, id, filename string, r io.Reader) (string, error)
	UploadLimit() int64
}

func (s *Server) artifactsOrError() (artifactService, error) {
	if s.artifacts == nil {
		return nil, &statusError{status: http.StatusNotImplemented, msg: "session artifacts are not available on this server"}
	}
	return s.artifacts, nil
}

// wireLogMessage is the request or response of a SessionLog (spec §2.6).
type wireLogMessage struct {
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	RawBody   string          `json:"rawBody"`
	Timestamp int64           `json:"timestamp,omitempty"`
}

// wireSessionLog is the SessionLog object of spec §2.6.
type wireSessionLog struct {
	Method    string          `json:"method"`
	PageID    int             `json:"pageId"`
	SessionID string          `json:"sessionId"`
	Timestamp int64           `json:"timestamp,omitempty"`
	FrameID   string          `json:"frameId,omitempty"`
	LoaderID  string          `json:"loaderId,omitempty"`
	Request   *wireLogMessage `json:"request,omitempty"`
	Response  *wireLogMessage `json:"response,omitempty"`
}

func toWireLog(l bb.SessionLog) wireSessionLog {
	w := wireSessionLog{Method: l.Method, PageID: l.PageID, SessionID: l.SessionID, FrameID: l.FrameID, LoaderID: l.LoaderID}
	if m := l.Request; m != nil {
		w.Request = &wireLogMessage{Params: nonEmptyObject(m.Body), RawBody: m.Raw, Timestamp: unixMilli(m)}
		w.Timestamp = w.Request.Timestamp
	}
	if m := l.Response; m != nil {
		w.Response = &wireLogMessage{Result: nonEmptyObject(m.Body), RawBody: m.Raw, Timestamp: unixMilli(m)}
	}
	return w
}

// nonEmptyObject keeps params and result present (both are required objects).
func nonEmptyObject(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(`{}`)
	}
	return b
}

func unixMilli(m *bb.LogMessage) int64 {
	if m.Timestamp.IsZero() {
		return 0
	}
	return m.Timestamp.UnixMilli()
}

// handleSessionLogs serves GET /v1/sessions/{id}/logs (spec §3.7), streamed.
func (s *Server) handleSessionLogs(w http.ResponseWriter, r *http.Request) {
	art, err := s.artifactsOrError()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, ok := s.acquireArtifactRead(w, r)
	if !ok {
		return
	}
	defer release()
	logs, err := art.Logs(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	streamArray(s, w, r, logs, toWireLog)
}

// wireRecordingEvent is the SessionRecording object of spec §2.7.
type wireRecordingEvent struct {
	Data      json.RawMessage `json:"data"`
	SessionID string          `json:"sessionId"`
	Timestamp int64           `json:"timestamp"`
	Type      int             `json:"type"`
}

// handleSessionRecording serves GET /v1/sessions/{id}/recording (spec §3.8), streamed.
func (s *Server) handleSessionRecording(w http.ResponseWriter, r *http.Request) {
	art, err := s.artifactsOrError()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, ok := s.acquireArtifactRead(w, r)
	if !ok {
		return
	}
	defer release()
	id := r.PathValue("id")
	events, err := art.Recording(r.Context(), projectIDOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	streamArray(s, w, r, events, func(e bb.RecordingEvent) wireRecordingEvent {
		data := e.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		return wireRecordingEvent{Data: data, SessionID: id, Timestamp: e.Timestamp, Type: e.Type}
	})
}

// DefaultMaxArtifactReads is Config.MaxArtifactReads when zero.
const DefaultMaxArtifactReads = 4

// acquireArtifactRead takes one of the server's artifact read slots (logs, recording),
// which bound the memory that concurrent reads hold: each streams, holding about one
// page of logs or the chunks of a recording being merged. Beyond them it answers 503
// with x-should-retry: true and returns false.
func (s *Server) acquireArtifactRead(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	select {
	case s.artifactReads <- struct{}{}:
		return func() { <-s.artifactReads }, true
	default:
		w.Header().Set("x-should-retry", "true")
		w.Header().Set("Retry-After", "1")
		s.writeError(w, r, bb.Errorf(bb.CodeUnavailable, "too many session logs and recordings are being read on this server; retry shortly"))
		return nil, false
	}
}

// handleSessionDownloads serves GET /v1/sessions/{id}/downloads (spec §3.6): a ZIP of
// the finished downloads, a valid empty one when there are none.
func (s *Server) handleSessionDownloads(w http.ResponseWriter, r *http.Request) {
	art, err := s.artifactsOrError()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	files, err := art.Downloads(r.Context(), projectIDOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-downloads.zip"`, id))
	w.WriteHeader(http.StatusOK)
	if err := art.WriteZip(r.Context(), w, files); err != nil && r.Context().Err() == nil {
		// The status is sent: the client sees a cut archive, which no unzip accepts.
		s.log.ErrorContext(r.Context(), "write downloads archive", "session_id", id,
			"request_id", requestIDOf(r.Context()), "err", err)
	}
}

// uploadChecker is a session service that checks an upload's size against the
// session's disk quota and the node's free space (*bb.Manager, security-review F8).
type uploadChecker interface {
	CheckUpload(ctx context.Context, projectID, id string, size int64) error
}

// handleSessionUpload serves POST /v1/sessions/{id}/uploads (spec §3.9): the part
// "file" of a multipart body becomes /tmp/.uploads/<name> in the session's browser.
// Unknown or ended session: 404; not multipart: 415; no file part or a bad file name:
// 400; larger than the upload limit: 413. Nothing is stored on error.
func (s *Server) handleSessionUpload(w http.ResponseWriter, r *http.Request) {
	art, err := s.artifactsOrError()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	projectID, id := projectIDOf(r.Context()), r.PathValue("id")
	if err := art.CanUpload(r.Context(), projectID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if c, ok := s.sessions.(uploadChecker); ok { // the session's disk quota, before the body is read
		if err := c.CheckUpload(r.Context(), projectID, id, r.ContentLength); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	name, file, err := filePart(w, r, fileUpload{content: "the file", subject: "the uploaded file", limit: art.UploadLimit()})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := art.Upload(r.Context(), projectID, id, name, file); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Message string `json:"message"`
	}{"File uploaded successfully"})
}
