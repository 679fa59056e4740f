package httpapi

import (
	"context"
	"io"
	"net/http"

	bb "github.com/browserd/browserd"
)

// profileService is what the contexts and extensions endpoints call; a
// *profiles.Service satisfies it.
type profileService interface {
	CreateContext(ctx context.Context, keyProjectID string, req bb.CreateContextRequest) (*bb.Context, bb.ContextKeys, error)
	Context(ctx context.Context, keyProjectID, id string) (*bb.Context, error)
	RenewContextKeys(ctx context.Context, keyProjectID, id string) (*bb.Context, bb.ContextKeys, error)
	DeleteContext(ctx context.Context, keyProjectID, id string) error
	CreateExtension(ctx context.Context, keyProjectID, fileName string, r io.Reader) (*bb.Extension, error)
	Extension(ctx context.Context, keyProjectID, id string) (*bb.Extension, error)
	DeleteExtension(ctx context.Context, keyProjectID, id string) error
}

// errProfilesOff answers the contexts and extensions endpoints of a server without
// Config.Profiles: 503, not to be retried (the answer of a server without storage).
var errProfilesOff = &bb.Error{Code: bb.CodeUnavailable, NoRetry: true,
	Message: "contexts and extensions are not configured on this browserd server"}

// wireContext is the Context object of spec §2.8.
type wireContext struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	ProjectID string `json:"projectId"`
	Name      string `json:"name,omitempty"`
}

// wireContextCreate is the ContextCreateResponse of spec §2.9.
type wireContextCreate struct {
	ID                       string `json:"id"`
	CipherAlgorithm          string `json:"cipherAlgorithm"`
	InitializationVectorSize int    `json:"initializationVectorSize"`
	PublicKey                string `json:"publicKey"`
	UploadURL                string `json:"uploadUrl"`
}

func toWireContext(c *bb.Context) wireContext {
	return wireContext{ID: c.ID, CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt),
		ProjectID: c.ProjectID, Name: c.Name}
}

func toWireContextCreate(c *bb.Context, k bb.ContextKeys) wireContextCreate {
	return wireContextCreate{ID: c.ID, CipherAlgorithm: k.CipherAlgorithm,
		InitializationVectorSize: k.InitializationVectorSize, PublicKey: k.PublicKey, UploadURL: k.UploadURL}
}

// handleCreateContext serves POST /v1/contexts (spec §6.1).
func (s *Server) handleCreateContext(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeBody(s, w, r, bb.DecodeCreateContextRequest)
	if !ok {
		return
	}
	c, keys, err := s.profiles.CreateContext(r.Context(), projectIDOf(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, toWireContextCreate(c, keys))
}

// handleGetContext serves GET /v1/contexts/{id} (spec §6.2).
func (s *Server) handleGetContext(w http.ResponseWriter, r *http.Request) {
	c, err := s.profiles.Context(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireContext(c))
}

// handleUpdateContext serves the deprecated PUT /v1/contexts/{id} (spec §6.3), which
// the SDK sends with an empty body: any body is read and ignored.
func (s *Server) handleUpdateContext(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, keys, err := s.profiles.RenewContextKeys(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireContextCreate(c, keys))
}

// handleDeleteContext serves DELETE /v1/contexts/{id} (spec §6.4): 204, no body.
func (s *Server) handleDeleteContext(w http.ResponseWriter, r *http.Request) {
	if err := s.profiles.DeleteContext(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
