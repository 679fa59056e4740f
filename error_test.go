package browserd

import (
	"net/http"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[ErrorCode]int{
		CodeInvalid: 400, CodeUnauthorized: 401, CodeForbidden: 403, CodeNotFound: 404,
		CodeConflict: 409, CodeGone: 410, CodeTooLarge: 413, CodeUnsupported: 415,
		CodeUnprocessable: 422, CodeLimit: 429, CodeUnavailable: 503, CodeInternal: 500,
		CodeBadGateway: 502, CodeTimeout: 504,
		"": http.StatusInternalServerError, "no-such-code": http.StatusInternalServerError,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%q) = %d; want %d", code, got, want)
		}
	}
}
