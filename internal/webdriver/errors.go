package webdriver

import (
	"encoding/json"
	"net/http"

	bb "github.com/browserd/browserd"
)

// W3C WebDriver error codes (https://w3c.github.io/webdriver/#errors) that browserd itself
// returns; chromedriver's own errors are relayed as they are.
const (
	errInvalidArgument   = "invalid argument"
	errInvalidSessionID  = "invalid session id"
	errSessionNotCreated = "session not created"
	errUnknownCommand    = "unknown command"
	errUnknownError      = "unknown error"
)

// wdError is an error in the WebDriver shape: an HTTP status, a W3C error code and a
// message safe to show clients.
type wdError struct {
	status  int
	code    string
	message string
}

func (e *wdError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, message string) *wdError {
	return &wdError{status: status, code: code, message: message}
}

// fromBB turns an error of the session Manager into a WebDriver error with code and the
// HTTP status the REST API would use.
func fromBB(err error, code string) *wdError {
	status := bb.HTTPStatus(bb.CodeOf(err))
	msg := bb.MessageOf(err)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return newError(status, code, msg)
}

// writeError writes e as {"value":{"error":…,"message":…,"stacktrace":""}}, the body
// every Selenium client decodes into its exception classes.
func writeError(w http.ResponseWriter, e *wdError) {
	writeJSON(w, e.status, map[string]any{"value": map[string]string{
		"error": e.code, "message": e.message, "stacktrace": "",
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only maps of strings and raw JSON are written
		status = http.StatusInternalServerError
		b = []byte(`{"value":{"error":"unknown error","message":"encode response","stacktrace":""}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client may be gone; nothing to do
}
