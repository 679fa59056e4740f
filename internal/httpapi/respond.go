package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	bb "github.com/browserd/browserd"
)

// statusError is an HTTP-level error that has no bb.ErrorCode: 405 and 501. Its message
// is shown to clients.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// writeError writes err in the error shape of spec §1.5. Only the message of a
// non-internal *bb.Error (or a statusError) is shown; other messages are the status
// text. Server failures (5xx but 501) are logged with their cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, ""
	if se, ok := errors.AsType[*statusError](err); ok {
		status, msg = se.status, se.msg
	} else {
		status, msg = bb.HTTPStatus(bb.CodeOf(err)), bb.MessageOf(err)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	// 501 is a client calling an endpoint browserd does not have, not a failure.
	if status >= 500 && status != http.StatusNotImplemented {
		s.log.ErrorContext(r.Context(), "request failed",
			"method", r.Method, "path", r.URL.Path, "status", status,
			"request_id", requestIDOf(r.Context()), "err", err)
	}
	if bb.NoRetryOf(err) {
		w.Header().Set("x-should-retry", "false")
	} else if bb.RetryOf(err) {
		w.Header().Set("x-should-retry", "true")
	}
	s.writeJSON(w, r, status, wireError{
		StatusCode: status,
		Code:       status,
		Error:      http.StatusText(status),
		Message:    msg,
	})
}

// writeJSON writes v as a JSON response. The wire types always encode unless a stored
// raw value (userMetadata) is corrupt, which is answered and logged as a 500.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // connect URLs keep their & readable
	if err := enc.Encode(v); err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_, _ = w.Write(buf.Bytes())
}

// readBody reads a request body of at most s.maxBody bytes. An empty body is fine with
// any content type on any method (spec §1.3); decoders treat it as {}.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, bb.Errorf(bb.CodeTooLarge, "body must not be larger than %d bytes", s.maxBody)
	} else if err != nil {
		return nil, &bb.Error{Code: bb.CodeInvalid, Message: "the request body could not be read", Err: fmt.Errorf("read body: %w", err)}
	}
	return body, nil
}

// decodeObject decodes a JSON object body into its members. An empty body is {}.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		if !json.Valid(body) {
			return nil, bb.Errorf(bb.CodeInvalid, "body is not valid JSON")
		}
		return nil, bb.Errorf(bb.CodeInvalid, "body must be an object")
	}
	return m, nil
}
