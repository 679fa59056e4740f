package openapitest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/httpapi"
	"github.com/browserd/browserd/internal/httpapi/openapitest"
)

func TestValidateResponse(t *testing.T) {
	doc, err := openapitest.Load(httpapi.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	jsonHdr := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	usage := `{"browserMinutes":3,"proxyBytes":0}`
	errBody := `{"statusCode":404,"code":404,"error":"Not Found","message":"Project not found"}`
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		wantErr            string // "" = valid
	}{
		{name: "valid", method: "GET", path: "/v1/projects/{id}/usage", status: 200, header: jsonHdr, body: usage},
		{name: "valid error", method: "GET", path: "/v1/projects/{id}/usage", status: 404, header: jsonHdr, body: errBody},
		{name: "extra field", method: "GET", path: "/v1/projects/{id}/usage", status: 200, header: jsonHdr,
			body: `{"browserMinutes":3,"proxyBytes":0,"cost":1}`, wantErr: "does not match"},
		{name: "missing field", method: "GET", path: "/v1/projects/{id}/usage", status: 200, header: jsonHdr,
			body: `{"browserMinutes":3}`, wantErr: "does not match"},
		{name: "wrong type", method: "GET", path: "/v1/projects/{id}/usage", status: 200, header: jsonHdr,
			body: `{"browserMinutes":"3","proxyBytes":0}`, wantErr: "does not match"},
		{name: "bad date-time", method: "GET", path: "/v1/extensions/{id}", status: 200, header: jsonHdr,
			body: `{"id":"e","createdAt":"yesterday","updatedAt":"2026-01-01T00:00:00.000Z","fileName":"a.zip","projectId":"p"}`, wantErr: "does not match"},
		{name: "undocumented status", method: "GET", path: "/v1/projects/{id}/usage", status: 418, header: jsonHdr, body: errBody, wantErr: "not documented"},
		{name: "undocumented type", method: "GET", path: "/v1/projects/{id}/usage", status: 200,
			header: http.Header{"Content-Type": {"text/html"}}, body: usage, wantErr: "not documented"},
		{name: "body on 204", method: "DELETE", path: "/v1/contexts/{id}", status: 204, body: "{}", wantErr: "without a body"},
		{name: "undocumented operation", method: "PATCH", path: "/v1/sessions/{id}", status: 200, wantErr: "not documented"},
		{name: "session with unknown field", method: "GET", path: "/v1/sessions", status: 200, header: jsonHdr,
			body:    `[{"id":"s","createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z","projectId":"p","startedAt":"2026-01-01T00:00:00.000Z","expiresAt":"2026-01-01T00:05:00.000Z","status":"RUNNING","proxyBytes":0,"keepAlive":false,"region":"us-west-2","connectUrl":"ws://x/"}]`,
			wantErr: "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := doc.ValidateResponse(tt.method, tt.path, tt.status, tt.header, []byte(tt.body))
			if tt.wantErr == "" && err != nil {
				t.Errorf("ValidateResponse = %v; want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ValidateResponse = %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	doc, err := openapitest.Load(httpapi.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/sessions":           "/v1/sessions",
		"/v1/sessions/abc":       "/v1/sessions/{id}",
		"/v1/sessions/abc/debug": "/v1/sessions/{id}/debug",
		"/v1/projects/p/usage":   "/v1/projects/{id}/usage",
		"/":                      "/",
	} {
		if got, ok := doc.Match(path); !ok || got != want {
			t.Errorf("Match(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
	if got, ok := doc.Match("/v1/nothing/here"); ok {
		t.Errorf("Match(/v1/nothing/here) = %q", got)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":     `{`,
		"openapi 3.0":  `{"openapi":"3.0.3","paths":{}}`,
		"no responses": `{"openapi":"3.1.0","paths":{"/a":{"get":{"operationId":"a"}}}}`,
		"duplicate id": `{"openapi":"3.1.0","paths":{"/a":{"get":{"operationId":"a","responses":{"204":{"description":""}}}},"/b":{"get":{"operationId":"a","responses":{"204":{"description":""}}}}}}`,
		"dangling ref": `{"openapi":"3.1.0","paths":{"/a":{"get":{"operationId":"a","responses":{"200":{"description":"","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}`,
	} {
		if _, err := openapitest.Load([]byte(doc)); err == nil {
			t.Errorf("%s: Load = nil error", name)
		}
	}
}
