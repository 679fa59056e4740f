package httpapi

import (
	"context"
	"io"
	"net/http"

	bb "github.com/browserd/browserd"
)

// certificateService is what the certificates endpoints call; a *certs.Service
// satisfies it.
type certificateService interface {
	CreateCertificate(ctx context.Context, keyProjectID string, r io.Reader) (*bb.Certificate, error)
	Certificate(ctx context.Context, keyProjectID, id string) (*bb.Certificate, error)
	Certificates(ctx context.Context, keyProjectID string) ([]*bb.Certificate, error)
	DeleteCertificate(ctx context.Context, keyProjectID, id string) error
}

// errCertificatesOff answers the certificates endpoints of a server without
// Config.Certificates: 503, not to be retried.
var errCertificatesOff = &bb.Error{Code: bb.CodeUnavailable, NoRetry: true,
	Message: "certificates are not configured on this browserd server"}

// wireCertificate is the Certificate object of SDK 2.21 (spec §6.11).
type wireCertificate struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	ProjectID string `json:"projectId"`
}

func toWireCertificate(c *bb.Certificate) wireCertificate {
	return wireCertificate{ID: c.ID, CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt), ProjectID: c.ProjectID}
}

// handleCreateCertificate serves POST /v1/certificates: a multipart body whose part
// "file" is the CA certificate. Not multipart: 415; no file part: 400; larger than
// bb.MaxCertificateSize: 413.
func (s *Server) handleCreateCertificate(w http.ResponseWriter, r *http.Request) {
	_, file, err := filePart(w, r, fileUpload{content: "the PEM CA certificate", subject: "the certificate file", limit: bb.MaxCertificateSize})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.certs.CreateCertificate(r.Context(), projectIDOf(r.Context()), file)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireCertificate(c))
}

// handleListCertificates serves GET /v1/certificates: the project's, oldest first.
func (s *Server) handleListCertificates(w http.ResponseWriter, r *http.Request) {
	list, err := s.certs.Certificates(r.Context(), projectIDOf(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wireCertificate, len(list))
	for i, c := range list {
		out[i] = toWireCertificate(c)
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// handleGetCertificate serves GET /v1/certificates/{id}.
func (s *Server) handleGetCertificate(w http.ResponseWriter, r *http.Request) {
	c, err := s.certs.Certificate(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireCertificate(c))
}

// handleDeleteCertificate serves DELETE /v1/certificates/{id}: 204, no body.
func (s *Server) handleDeleteCertificate(w http.ResponseWriter, r *http.Request) {
	if err := s.certs.DeleteCertificate(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
