package httpapi

import (
	"context"
	"net/http"

	bb "github.com/browserd/browserd"
)

// fetchService fetches URLs for projects (POST /v1/fetch); *fetch.Fetcher
// (internal/fetch) satisfies it.
type fetchService interface {
	Fetch(ctx context.Context, projectID string, req bb.FetchRequest) (*bb.FetchResult, error)
}

// errFetchOff answers POST /v1/fetch on a server without Config.Fetch.
var errFetchOff = &statusError{status: http.StatusNotImplemented, msg: "POST /v1/fetch is not enabled on this browserd server"}

// handleFetch serves POST /v1/fetch, the SDK's fetchAPI.create (docs/COMPATIBILITY.md,
// "Fetch"). Without a fetcher it answers 501 (errFetchOff).
func (s *Server) handleFetch(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeBody(s, w, r, bb.DecodeFetchRequest)
	if !ok {
		return
	}
	res, err := s.fetch.Fetch(r.Context(), projectIDOf(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireFetch(res))
}
