package httpapi

import (
	"net/http"

	bb "github.com/browserd/browserd"
)

// wireExtension is the Extension object of spec §2.10.
type wireExtension struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	FileName  string `json:"fileName"`
	ProjectID string `json:"projectId"`
}

func toWireExtension(e *bb.Extension) wireExtension {
	return wireExtension{ID: e.ID, CreatedAt: formatTime(e.CreatedAt), UpdatedAt: formatTime(e.UpdatedAt),
		FileName: e.FileName, ProjectID: e.ProjectID}
}

// handleCreateExtension serves POST /v1/extensions (spec §6.5): a multipart body whose
// part "file" is the zip, streamed to the Manager. Not multipart: 415; no file part:
// 400; larger than bb.MaxExtensionSize: 413.
func (s *Server) handleCreateExtension(w http.ResponseWriter, r *http.Request) {
	name, file, err := filePart(w, r, fileUpload{content: "the extension zip", subject: "the extension", limit: bb.MaxExtensionSize})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := s.profiles.CreateExtension(r.Context(), projectIDOf(r.Context()), name, file)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireExtension(e))
}

// handleGetExtension serves GET /v1/extensions/{id} (spec §6.6).
func (s *Server) handleGetExtension(w http.ResponseWriter, r *http.Request) {
	e, err := s.profiles.Extension(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireExtension(e))
}

// handleDeleteExtension serves DELETE /v1/extensions/{id} (spec §6.7): 204, no body.
func (s *Server) handleDeleteExtension(w http.ResponseWriter, r *http.Request) {
	if err := s.profiles.DeleteExtension(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
