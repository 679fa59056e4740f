package httpapi

import "net/http"

// handleListProjects serves GET /v1/projects (spec §6.8).
func (s *Server) handleListProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := s.sessions.Projects(r.Context(), projectIDOf(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireProjects(ps))
}

// handleGetProject serves GET /v1/projects/{id} (spec §6.9).
func (s *Server) handleGetProject(w http.ResponseWriter, r *http.Request) {
	p, err := s.sessions.Project(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireProject(p))
}

// handleProjectUsage serves GET /v1/projects/{id}/usage (spec §6.10).
func (s *Server) handleProjectUsage(w http.ResponseWriter, r *http.Request) {
	u, err := s.sessions.Usage(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireUsage(u))
}
