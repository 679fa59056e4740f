package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"

	bb "github.com/browserd/browserd"
)

// replayService serves the Session Replay and Recording Downloads endpoints (spec
// §3.10); *replays.Service (internal/replays) satisfies it.
type replayService interface {
	Replays(ctx context.Context, projectID, id string) ([]bb.ReplayPage, error)
	Playlist(ctx context.Context, projectID, id, pageID, segmentBase string) ([]byte, error)
	Segment(ctx context.Context, projectID, id, pageID, name string) (io.ReadCloser, error)
	RequestDownloads(ctx context.Context, projectID, id string) ([]bb.RecordingDownload, error)
	Downloads(ctx context.Context, projectID, id string) ([]bb.RecordingDownload, error)
	OpenDownload(ctx context.Context, id, pageID, token string) (io.ReadCloser, error)
}

// errReplaysOff answers the replay endpoints of a server without Config.Replays.
var errReplaysOff = &statusError{status: http.StatusNotImplemented, msg: "session replays are not available on this server"}

// replayRoutes are the endpoints of spec §3.10, behind authenticate; without
// Config.Replays they answer 501 (errReplaysOff, through requires). The MP4 itself
// (handleRecordingFile) is outside: its URL carries its own signed grant.
func (s *Server) replayRoutes() []route {
	return []route{
		{http.MethodGet, "/v1/sessions/{id}/replays", s.handleReplays},
		{http.MethodGet, "/v1/sessions/{id}/replays/{pageId}", s.handleReplayPlaylist},
		{http.MethodGet, "/v1/sessions/{id}/replays/{pageId}/{segment}", s.handleReplaySegment},
		{http.MethodPost, "/v1/sessions/{id}/recording/downloads", s.handleRequestRecordingDownloads},
		{http.MethodGet, "/v1/sessions/{id}/recording/downloads", s.handleRecordingDownloads},
	}
}

// recordingFilePath is the downloadUrl's path; its query carries the token.
const recordingFilePath = "/v1/sessions/{id}/recording/downloads/{pageId}"

type wireReplayPage struct {
	PageID      string `json:"pageId"`
	URL         string `json:"url"`
	StartTimeMs int64  `json:"startTimeMs"`
	EndTimeMs   int64  `json:"endTimeMs"`
}

type wireReplays struct {
	PageCount int              `json:"pageCount"`
	Pages     []wireReplayPage `json:"pages"`
}

// replayBase returns the absolute URL of a session's replays (…/v1/sessions/{id}/replays/).
func (s *Server) replayBase(r *http.Request, id string) string {
	base := bb.PublicBase(r, s.public)
	return base.String() + "/v1/sessions/" + url.PathEscape(id) + "/replays/"
}

// handleReplays serves GET /v1/sessions/{id}/replays: every recorded page with the URL
// of its HLS playlist. A session that recorded nothing has pageCount 0.
func (s *Server) handleReplays(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	id := r.PathValue("id")
	pages, err := svc.Replays(r.Context(), projectIDOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := s.replayBase(r, id)
	out := wireReplays{PageCount: len(pages), Pages: make([]wireReplayPage, 0, len(pages))}
	for _, p := range pages {
		out.Pages = append(out.Pages, wireReplayPage{PageID: p.PageID, URL: base + p.PageID,
			StartTimeMs: p.Start.UnixMilli(), EndTimeMs: p.End.UnixMilli()})
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// handleReplayPlaylist serves GET /v1/sessions/{id}/replays/{pageId}: the page's HLS
// VOD playlist, its segments as absolute URLs under the same path. The first call
// after the session encodes the page (seconds per minute of video).
func (s *Server) handleReplayPlaylist(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	id, pageID := r.PathValue("id"), r.PathValue("pageId")
	pl, err := svc.Playlist(r.Context(), projectIDOf(r.Context()), id, pageID, s.replayBase(r, id)+url.PathEscape(pageID)+"/")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "private, no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(pl)
}

// handleReplaySegment serves one MPEG-TS segment of a page's playlist (only names the
// playlist lists).
func (s *Server) handleReplaySegment(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	rc, err := svc.Segment(r.Context(), projectIDOf(r.Context()), r.PathValue("id"), r.PathValue("pageId"), r.PathValue("segment"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "video/mp2t")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, rc) // a failure mid-body: the client sees a cut segment
}

type wireRecordingDownload struct {
	PageID      string `json:"pageId"`
	Status      string `json:"status"`
	CompletedAt string `json:"completedAt,omitempty"`
	DownloadURL string `json:"downloadUrl,omitempty"`
}

type wireRecordingDownloads struct {
	Downloads []wireRecordingDownload `json:"downloads"`
}

func (s *Server) writeDownloads(w http.ResponseWriter, r *http.Request, id string, ds []bb.RecordingDownload) {
	out := wireRecordingDownloads{Downloads: make([]wireRecordingDownload, 0, len(ds))}
	base := bb.PublicBase(r, s.public)
	for _, d := range ds {
		wd := wireRecordingDownload{PageID: d.PageID, Status: string(d.Status)}
		if d.Status == bb.DownloadCompleted {
			wd.CompletedAt = formatTime(d.CompletedAt)
			wd.DownloadURL = base.String() + "/v1/sessions/" + url.PathEscape(id) + "/recording/downloads/" +
				url.PathEscape(d.PageID) + "?token=" + url.QueryEscape(d.Token)
		}
		out.Downloads = append(out.Downloads, wd)
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// handleRequestRecordingDownloads serves POST /v1/sessions/{id}/recording/downloads:
// one MP4 per page is made in the background; a failed one is tried again.
func (s *Server) handleRequestRecordingDownloads(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	id := r.PathValue("id")
	ds, err := svc.RequestDownloads(r.Context(), projectIDOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeDownloads(w, r, id, ds)
}

// handleRecordingDownloads serves GET /v1/sessions/{id}/recording/downloads.
func (s *Server) handleRecordingDownloads(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	id := r.PathValue("id")
	ds, err := svc.Downloads(r.Context(), projectIDOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeDownloads(w, r, id, ds)
}

// handleRecordingFile serves a downloadUrl: the MP4 of a page, to the bearer of its
// signed token (no API key: the URL is the grant, short-lived and bound to the page).
func (s *Server) handleRecordingFile(w http.ResponseWriter, r *http.Request) {
	svc := s.replays
	if svc == nil { // outside the authenticated table: requires does not cover it
		s.writeError(w, r, errReplaysOff)
		return
	}
	id, pageID := r.PathValue("id"), r.PathValue("pageId")
	rc, err := svc.OpenDownload(r.Context(), id, pageID, r.URL.Query().Get("token"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`-page-`+pageID+`.mp4"`)
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, rc)
}
