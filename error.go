package browserd

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode classifies an error; the HTTP layer maps it to a status code.
type ErrorCode string

// Error codes. The comment gives the HTTP status each one maps to.
const (
	CodeInvalid       ErrorCode = "invalid"       // 400
	CodeUnauthorized  ErrorCode = "unauthorized"  // 401
	CodeForbidden     ErrorCode = "forbidden"     // 403
	CodeNotFound      ErrorCode = "not_found"     // 404
	CodeConflict      ErrorCode = "conflict"      // 409
	CodeGone          ErrorCode = "gone"          // 410
	CodeTooLarge      ErrorCode = "too_large"     // 413
	CodeUnsupported   ErrorCode = "unsupported"   // 415
	CodeUnprocessable ErrorCode = "unprocessable" // 422
	CodeLimit         ErrorCode = "limit"         // 429
	CodeUnavailable   ErrorCode = "unavailable"   // 503
	CodeBadGateway    ErrorCode = "bad_gateway"   // 502: a site browserd fetched for the client failed (POST /v1/fetch)
	CodeTimeout       ErrorCode = "timeout"       // 504: a site browserd fetched for the client did not answer in time
	CodeInternal      ErrorCode = "internal"      // 500; the message is never shown
)

// Error is an error whose Message is safe to show to API clients.
type Error struct {
	Code    ErrorCode
	Message string // safe to show API clients
	// NoRetry asks clients not to retry (sent as `x-should-retry: false`). The official
	// SDKs retry 409, 429 and 5xx by default; some of ours must fail fast.
	NoRetry bool
	// Retry asks clients to retry (sent as `x-should-retry: true`): the condition is
	// temporary, such as a session end the store has not taken yet.
	Retry bool
	Err   error // cause, for logs only; returned by Unwrap
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, or CodeInternal.
func CodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal // anything we did not classify
}

// MessageOf returns the client-safe message of err, or "" for internal errors.
func MessageOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Code != CodeInternal {
		return e.Message
	}
	return ""
}

// NoRetryOf reports whether err asks clients not to retry.
func NoRetryOf(err error) bool {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.NoRetry
	}
	return false
}

// RetryOf reports whether err asks clients to retry.
func RetryOf(err error) bool {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Retry
	}
	return false
}

// ConcurrencyLimitError is the error for a project at its concurrency limit. The
// message is Browserbase's, word for word (spec §5.6), so that tools that match it work.
func ConcurrencyLimitError(limit, current int) *Error {
	return &Error{
		Code: CodeLimit,
		Message: fmt.Sprintf("You've exceeded your max concurrent sessions limit (limit %d, currently %d). "+
			"Please contact support to increase your limit.", limit, current),
		NoRetry: true,
	}
}

// HTTPStatus is the HTTP status every browserd endpoint answers an error of code with;
// unknown codes are 500.
func HTTPStatus(code ErrorCode) int {
	switch code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeGone:
		return http.StatusGone
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case CodeUnprocessable:
		return http.StatusUnprocessableEntity
	case CodeLimit:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeBadGateway:
		return http.StatusBadGateway
	case CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
