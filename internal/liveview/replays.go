package liveview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	bb "github.com/browserd/browserd"
)

// This file gives the inspector a session's video replays (GET /v1/sessions/{id}/replays:
// an HLS playlist per recorded page, issue 19 part 2) through the REST API with the
// signed-in key, as the artifact links do: the page's script (hls.js) never holds the
// key. Where the API has no replays (a server without them, or a session that recorded
// none) the route answers the API's 404 and the page shows no video.

// maxReplayDoc bounds the replays list and a playlist read from the API.
const maxReplayDoc = 4 << 20

// bufferedResponse is an http.ResponseWriter that keeps up to max bytes of a response.
type bufferedResponse struct {
	h      http.Header
	status int
	body   bytes.Buffer
	max    int
	over   bool
}

func (b *bufferedResponse) Header() http.Header { return b.h }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	if b.body.Len()+len(p) > b.max {
		b.over = true
		return 0, fmt.Errorf("liveview: an API response over %d bytes", b.max)
	}
	return b.body.Write(p)
}

// apiRequest is GET apiPath on the REST API as the signed-in key.
func (s *Server) apiRequest(r *http.Request, si *signin, apiPath string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, apiPath, nil)
	if err != nil {
		return nil, err
	}
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	req.Header.Set("X-BB-API-Key", si.apiKey)
	return req, nil
}

// replayAPI checks the request (signed in, the page's token, a plain session id and
// page id) and returns the API path of the session's replays, or writes the error.
func (s *Server) replayAPI(w http.ResponseWriter, r *http.Request) (*signin, string, bool) {
	si, key := s.apiSignin(w, r)
	if key == nil {
		return nil, "", false
	}
	if s.cfg.API == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "the API is not available here"))
		return nil, "", false
	}
	id := r.PathValue("id")
	if !bb.ValidID(id) {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "Session not found"))
		return nil, "", false
	}
	p := "/v1/sessions/" + id + "/replays"
	for _, seg := range []string{r.PathValue("pageId"), r.PathValue("segment")} {
		if seg == "" {
			break
		}
		if seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\") {
			s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "no such replay"))
			return nil, "", false
		}
		p += "/" + url.PathEscape(seg)
	}
	return si, p, true
}

// bufferedAPI runs an API GET and keeps its answer; an error answer is passed on.
func (s *Server) bufferedAPI(w http.ResponseWriter, r *http.Request, si *signin, apiPath string) (*bufferedResponse, bool) {
	req, err := s.apiRequest(r, si, apiPath)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	req.Header.Set("Accept", "application/json")
	out := &bufferedResponse{h: http.Header{}, max: maxReplayDoc}
	s.cfg.API.ServeHTTP(out, req)
	if out.over {
		s.writeError(w, r, fmt.Errorf("replays of %s: the API's answer is too large", apiPath))
		return nil, false
	}
	if out.status != http.StatusOK {
		w.Header().Set("Content-Type", out.h.Get("Content-Type"))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(out.status)
		_, _ = w.Write(out.body.Bytes()) // the status is sent; a failure means the client left
		return nil, false
	}
	return out, true
}

// replayDoc answers the session's replay API route the request names (replayAPI) and
// returns its answer when it is a 200 (bufferedAPI), with the API's path.
func (s *Server) replayDoc(w http.ResponseWriter, r *http.Request) (*bufferedResponse, string, bool) {
	si, p, ok := s.replayAPI(w, r)
	if !ok {
		return nil, "", false
	}
	res, ok := s.bufferedAPI(w, r, si, p)
	return res, p, ok
}

// replayPage is one page of GET /ui/api/sessions/{id}/replays: the API's, less its
// url (the page builds the dashboard's own, …/replays/{pageId}).
type replayPage struct {
	PageID      string `json:"pageId"`
	StartTimeMs int64  `json:"startTimeMs"`
	EndTimeMs   int64  `json:"endTimeMs"`
}

// handleReplays serves GET /ui/api/sessions/{id}/replays.
func (s *Server) handleReplays(w http.ResponseWriter, r *http.Request) {
	res, p, ok := s.replayDoc(w, r)
	if !ok {
		return
	}
	var in struct {
		Pages []replayPage `json:"pages"`
	}
	if err := json.Unmarshal(res.body.Bytes(), &in); err != nil {
		s.writeError(w, r, fmt.Errorf("decode the replays of %s: %w", p, err))
		return
	}
	if in.Pages == nil {
		in.Pages = []replayPage{}
	}
	writeData(w, map[string]any{"pageCount": len(in.Pages), "pages": in.Pages})
}

// handleReplayPlaylist serves GET /ui/api/sessions/{id}/replays/{pageId}: the API's HLS
// playlist with each segment's URL made relative ("{pageId}/{segment}"), so that the
// player fetches the segments here too.
func (s *Server) handleReplayPlaylist(w http.ResponseWriter, r *http.Request) {
	res, p, ok := s.replayDoc(w, r)
	if !ok {
		return
	}
	out, err := relativePlaylist(res.body.String(), r.PathValue("pageId"))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("replay playlist %s: %w", p, err))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(out) // a failure means the client left
}

// relativePlaylist rewrites an HLS playlist's URI lines to "{pageID}/{last path
// element}", relative to the dashboard's playlist URL; tags and comments stay.
func relativePlaylist(pl, pageID string) ([]byte, error) {
	page := url.PathEscape(pageID)
	var out bytes.Buffer
	for line := range strings.Lines(pl) {
		l := strings.TrimRight(line, "\r\n")
		if l != "" && !strings.HasPrefix(l, "#") {
			u, err := url.Parse(l)
			if err != nil {
				return nil, fmt.Errorf("a segment URL: %w", err)
			}
			seg := path.Base(u.Path)
			if seg == "/" || seg == "." || seg == ".." {
				return nil, fmt.Errorf("a segment URL without a name: %q", l)
			}
			l = page + "/" + url.PathEscape(seg)
		}
		out.WriteString(l)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// handleReplaySegment serves GET /ui/api/sessions/{id}/replays/{pageId}/{segment}, a
// segment as the API streams it.
func (s *Server) handleReplaySegment(w http.ResponseWriter, r *http.Request) {
	si, p, ok := s.replayAPI(w, r)
	if !ok {
		return
	}
	req, err := s.apiRequest(r, si, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.API.ServeHTTP(w, req)
}
