package client_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/browserd/browserd/internal/client"
	"github.com/google/go-cmp/cmp"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   *client.Error
	}{
		{name: "spec body", status: 404, body: `{"statusCode":404,"code":404,"error":"Not Found","message":"Session not found"}`,
			want: &client.Error{Status: 404, Reason: "Not Found", Message: "Session not found"}},
		{name: "openapi body", status: 429, body: `{"code":429,"message":"limit reached"}`,
			want: &client.Error{Status: 429, Message: "limit reached"}},
		{name: "empty message", status: 400, body: `{"error":"Bad Request","message":""}`,
			want: &client.Error{Status: 400, Reason: "Bad Request", Message: `{"error":"Bad Request","message":""}`}},
		{name: "message not a string", status: 400, body: `{"message":{"a":1}}`,
			want: &client.Error{Status: 400, Message: `{"message":{"a":1}}`}},
		{name: "text", status: 502, body: "  Bad Gateway from nginx\n",
			want: &client.Error{Status: 502, Message: "Bad Gateway from nginx"}},
		{name: "no body", status: 503, body: "",
			want: &client.Error{Status: 503, Message: "Service Unavailable"}},
		{name: "no body, unknown status", status: 599, body: "",
			want: &client.Error{Status: 599, Message: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := client.ParseError(tt.status, []byte(tt.body))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseError(%d, %q) (-want +got):\n%s", tt.status, tt.body, diff)
			}
		})
	}
}

// FuzzParseError checks that any error body gives an *Error with the status, a message
// taken from the body or the status, and an Error() that names the status.
func FuzzParseError(f *testing.F) {
	f.Add(404, []byte(`{"statusCode":404,"code":404,"error":"Not Found","message":"Session not found"}`))
	f.Add(500, []byte(`<html>oops</html>`))
	f.Add(400, []byte(`{"message":null,"error":7}`))
	f.Add(429, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := client.ParseError(status, body)
		if e == nil || e.Status != status {
			t.Fatalf("ParseError(%d, %q) = %+v", status, body, e)
		}
		if e.Message == "" && strings.TrimSpace(string(body)) != "" {
			t.Errorf("ParseError(%d, %q): empty message from a body", status, body)
		}
		if !strings.HasSuffix(e.Error(), ")") || !strings.Contains(e.Error(), "(HTTP ") {
			t.Errorf("Error() = %q", e.Error())
		}
		text := strings.TrimSpace(string(body))
		if utf8.Valid(body) && e.Message != text && e.Message != http.StatusText(status) &&
			!strings.Contains(strings.ToLower(text), "message") { // JSON keys match case-insensitively
			t.Errorf("ParseError(%d, %q): message %q is neither the body, its message nor the status", status, body, e.Message)
		}
	})
}
