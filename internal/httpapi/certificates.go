package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
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

func (s *Server) certificates() (certificateService, error) {
	if s.certs == nil {
		return nil, errCertificatesOff
	}
	return s.certs, nil
}

// handleCreateCertificate serves POST /v1/certificates: a multipart body whose part
// "file" is the CA certificate. Not multipart: 415; no file part: 400; larger than
// bb.MaxCertificateSize: 413.
func (s *Server) handleCreateCertificate(w http.ResponseWriter, r *http.Request) {
	cs, err := s.certificates()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		s.writeError(w, r, bb.Errorf(bb.CodeUnsupported, "the body must be multipart/form-data with the PEM CA certificate in the part \"file\""))
		return
	}
	body := http.MaxBytesReader(w, r.Body, bb.MaxCertificateSize+multipartOverhead)
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			s.writeError(w, r, bb.Errorf(bb.CodeInvalid, "the body has no part named \"file\""))
			return
		} else if err != nil {
			s.writeError(w, r, certUploadError(err))
			return
		}
		if part.FormName() != "file" {
			continue // NextPart skips the rest of this part
		}
		c, err := cs.CreateCertificate(r.Context(), projectIDOf(r.Context()), certUploadReader{part})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, toWireCertificate(c))
		return
	}
}

// certUploadReader turns the errors of reading a multipart part into API errors.
type certUploadReader struct{ r io.Reader }

func (u certUploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = certUploadError(err)
	}
	return n, err
}

// certUploadError classifies an error reading an upload: the body limit is 413,
// anything else a malformed body (400).
func certUploadError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return bb.Errorf(bb.CodeTooLarge, "the certificate file must not be larger than %d bytes", bb.MaxCertificateSize)
	}
	return &bb.Error{Code: bb.CodeInvalid, Message: "the multipart body could not be read", Err: err}
}

// handleListCertificates serves GET /v1/certificates: the project's, oldest first.
func (s *Server) handleListCertificates(w http.ResponseWriter, r *http.Request) {
	cs, err := s.certificates()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := cs.Certificates(r.Context(), projectIDOf(r.Context()))
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
	cs, err := s.certificates()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := cs.Certificate(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireCertificate(c))
}

// handleDeleteCertificate serves DELETE /v1/certificates/{id}: 204, no body.
func (s *Server) handleDeleteCertificate(w http.ResponseWriter, r *http.Request) {
	cs, err := s.certificates()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := cs.DeleteCertificate(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
