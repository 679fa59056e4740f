package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"time"

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
	if errors.Is(err, bb.ErrNodeFull) || errors.Is(err, bb.ErrLowDisk) {
		// This node cannot take it, another may: a placing node tries the next.
		w.Header().Set(NodeFullHeader, "1")
	}
	if bb.NoRetryOf(err) || !retryable(status) {
		w.Header().Set("x-should-retry", "false")
	} else if bb.RetryOf(err) {
		w.Header().Set("x-should-retry", "true")
		// A condition expected to pass soon (the database restarting, a session end
		// not recorded yet): tell plain HTTP clients when to come back too.
		if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	s.writeJSON(w, r, status, wireError{
		StatusCode: status,
		Code:       status,
		Error:      http.StatusText(status),
		Message:    msg,
	})
}

// retryable reports whether an error status may succeed when retried as it is: 408,
// 409, 429 and 5xx but 501, which the official SDKs also retry unless told not to.
// Every other error says x-should-retry: false. A 501 in particular must: the SDKs
// retry 5xx, and a retried multipart upload, its body spent, fails as "Connection
// error" instead of showing the 501.
func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented:
		return false
	}
	return status >= 500
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

// streamArray writes seq as a JSON array, each element converted by wire and encoded
// straight to the response, so that no more than one element is held. An error before
// the first element is answered as usual (writeError). After it the status is sent: the
// error is logged and the connection aborted, so that the client sees a cut body, which
// no JSON decoder accepts, rather than a short list that looks whole.
//
// Each write must be done within s.streamWriteTimeout: a client that stops reading
// must not hold an artifact read slot (acquireArtifactRead) for ever.
func streamArray[T, W any](s *Server, w http.ResponseWriter, r *http.Request, seq iter.Seq2[T, error], wire func(T) W) {
	rc := http.NewResponseController(w)
	// Without a deadline afterwards: the server sets none of its own, and a later
	// response on the same connection must not inherit this one. An error means the
	// writer has no deadlines (a test recorder): then there is nothing to reset.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as writeJSON
	n := 0
	for v, err := range seq {
		if err == nil {
			buf.Reset()
			if n == 0 {
				buf.WriteByte('[')
			} else {
				buf.WriteByte(',')
			}
			err = enc.Encode(wire(v))
		}
		if err != nil {
			if n == 0 {
				s.writeError(w, r, err)
				return
			}
			s.log.ErrorContext(r.Context(), "response cut", "method", r.Method, "path", r.URL.Path,
				"request_id", requestIDOf(r.Context()), "err", err)
			panic(http.ErrAbortHandler) // net/http's way to abort a response; it logs nothing more
		}
		if n == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
		}
		n++
		_ = rc.SetWriteDeadline(time.Now().Add(s.streamWriteTimeout)) // as above
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client went away, or read too slowly
		}
	}
	if n == 0 {
		s.writeJSON(w, r, http.StatusOK, []W{})
		return
	}
	// The status is sent; a failed write means the client went away.
	_, _ = io.WriteString(w, "]\n")
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

// decodeBody reads r's body (readBody) and decodes it with decode. On an error it
// answers r (writeError) and ok is false: the handler returns.
func decodeBody[T any](s *Server, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error)) (v T, ok bool) {
	body, err := s.readBody(w, r)
	if err == nil {
		v, err = decode(body)
	}
	if err != nil {
		s.writeError(w, r, err)
		return v, false
	}
	return v, true
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
