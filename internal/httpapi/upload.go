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

// fileUpload describes the multipart body of an upload endpoint, whose part "file" is
// the upload; the words go into its error messages.
type fileUpload struct {
	content string // what the part holds: "the extension zip", in the 415 message
	subject string // what must not be too large: "the extension", in the 413 message
	limit   int64  // the largest file; the body may be multipartOverhead more
}

// filePart returns the file name and a reader of the part "file" of r's multipart
// body. Not multipart: 415; no file part: 400; reading past u.limit: 413 (also from
// the reader, whose errors are API errors). The reader is valid until the handler
// returns.
func filePart(w http.ResponseWriter, r *http.Request, u fileUpload) (name string, body io.Reader, err error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", nil, bb.Errorf(bb.CodeUnsupported, "the body must be multipart/form-data with %s in the part \"file\"", u.content)
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, u.limit+multipartOverhead), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil, bb.Errorf(bb.CodeInvalid, "the body has no part named \"file\"")
		} else if err != nil {
			return "", nil, u.readError(err)
		}
		if part.FormName() == "file" {
			return part.FileName(), uploadReader{part, u}, nil
		}
		// NextPart skips the rest of this part.
	}
}

// uploadReader turns the errors of reading a multipart part into API errors.
type uploadReader struct {
	r io.Reader
	u fileUpload
}

func (ur uploadReader) Read(p []byte) (int, error) {
	n, err := ur.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = ur.u.readError(err)
	}
	return n, err
}

// readError classifies an error reading an upload: the body limit is 413, anything
// else a malformed body (400).
func (u fileUpload) readError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return bb.Errorf(bb.CodeTooLarge, "%s must not be larger than %d bytes", u.subject, u.limit)
	}
	return &bb.Error{Code: bb.CodeInvalid, Message: "the multipart body could not be read", Err: err}
}
