package httpapi

import (
	"net/http"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// wireLiveURLs is SessionLiveURLs (spec §2.5).
type wireLiveURLs struct {
	DebuggerFullscreenURL string         `json:"debuggerFullscreenUrl"`
	DebuggerURL           string         `json:"debuggerUrl"`
	WSURL                 string         `json:"wsUrl"`
	Pages                 []wireLivePage `json:"pages"`
}

// wireLivePage is a SessionLiveURLs page (spec §2.5); every field is required.
type wireLivePage struct {
	ID                    string `json:"id"`
	URL                   string `json:"url"`
	Title                 string `json:"title"`
	FaviconURL            string `json:"faviconUrl"`
	DebuggerURL           string `json:"debuggerUrl"`
	DebuggerFullscreenURL string `json:"debuggerFullscreenUrl"`
}

// handleDebugSession serves GET /v1/sessions/{id}/debug (spec §3.5): live URLs carrying
// a signed token that expires after expiresIn seconds (or with the session). The
// browserd extension readOnly=true makes URLs that can only watch (docs/COMPATIBILITY.md).
func (s *Server) handleDebugSession(w http.ResponseWriter, r *http.Request) {
	ttl, readOnly, err := parseDebugQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lv, err := s.sessions.LiveView(r.Context(), projectIDOf(r.Context()), r.PathValue("id"), ttl, readOnly)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireLiveURLs(lv.URLs(s.publicBase(r))))
}

func toWireLiveURLs(u bb.LiveURLs) wireLiveURLs {
	out := wireLiveURLs{
		DebuggerFullscreenURL: u.FullscreenURL,
		DebuggerURL:           u.DevToolsURL,
		WSURL:                 u.WebSocketURL,
		Pages:                 make([]wireLivePage, 0, len(u.Pages)),
	}
	for _, p := range u.Pages {
		out.Pages = append(out.Pages, wireLivePage{
			ID: p.ID, URL: p.URL, Title: p.Title, FaviconURL: p.FaviconURL,
			DebuggerURL: p.DevToolsURL, DebuggerFullscreenURL: p.FullscreenURL,
		})
	}
	return out
}

// parseDebugQuery reads expiresIn (whole seconds, at least 1; larger values than
// bb.MaxLiveViewTTL are capped) and readOnly (true or false). Empty values count as absent.
func parseDebugQuery(r *http.Request) (ttl time.Duration, readOnly bool, err error) {
	q := r.URL.Query()
	if v := q.Get("expiresIn"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, false, bb.Errorf(bb.CodeInvalid, "querystring/expiresIn must be a whole number of seconds, at least 1")
		}
		ttl = min(time.Duration(min(n, bb.MaxTimeout))*time.Second, bb.MaxLiveViewTTL)
	}
	if v := q.Get("readOnly"); v != "" {
		if readOnly, err = strconv.ParseBool(v); err != nil || (v != "true" && v != "false") {
			return 0, false, bb.Errorf(bb.CodeInvalid, "querystring/readOnly must be true or false")
		}
	}
	return ttl, readOnly, nil
}
