package httpapi

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	bb "github.com/browserd/browserd"
)

// multipartOverhead is what a multipart body may carry besides the file: boundaries,
// part headers and small fields.
const multipartOverhead = 1 << 20

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
	st, err := s.storage()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		s.writeError(w, r, bb.Errorf(bb.CodeUnsupported, "the body must be multipart/form-data with the extension zip in the part \"file\""))
		return
	}
	body := http.MaxBytesReader(w, r.Body, bb.MaxExtensionSize+multipartOverhead)
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			s.writeError(w, r, bb.Errorf(bb.CodeInvalid, "the body has no part named \"file\""))
			return
		} else if err != nil {
			s.writeError(w, r, uploadError(err))
			return
		}
		if part.FormName() != "file" {
			continue // NextPart skips the rest of this part
		}
		e, err := st.CreateExtension(r.Context(), projectIDOf(r.Context()), part.FileName(), uploadReader{part})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, toWireExtension(e))
		return
	}
}

// uploadReader turns the errors of reading a multipart part into API errors.
type uploadReader struct{ r io.Reader }

func (u uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = uploadError(err)
	}
	return n, err
}

// uploadError classifies an error reading an upload: the body limit is 413, anything
// else a malformed body (400).
func uploadError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return bb.Errorf(bb.CodeTooLarge, "the extension must not be larger than %d bytes", bb.MaxExtensionSize)
	}
	return &bb.Error{Code: bb.CodeInvalid, Message: "the multipart body could not be read", Err: err}
}

// handleGetExtension serves GET /v1/extensions/{id} (spec §6.6).
func (s *Server) handleGetExtension(w http.ResponseWriter, r *http.Request) {
	st, err := s.storage()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := st.Extension(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireExtension(e))
}

// handleDeleteExtension serves DELETE /v1/extensions/{id} (spec §6.7): 204, no body.
func (s *Server) handleDeleteExtension(w http.ResponseWriter, r *http.Request) {
	st, err := s.storage()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := st.DeleteExtension(r.Context(), projectIDOf(r.Context()), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
