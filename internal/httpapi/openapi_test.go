package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/httpapi/openapitest"
)

// TestOpenAPIRoutes fails when the route table and openapi.json disagree: every route
// must be documented, and every documented /v1 operation must be a route.
func TestOpenAPIRoutes(t *testing.T) {
	doc, err := openapitest.Load(OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	served := make(map[string]bool)
	for _, rt := range Routes() {
		served[rt] = true
		method, path, _ := strings.Cut(rt, " ")
		if !doc.Has(method, path) {
			t.Errorf("route %s is not in openapi.json", rt)
		}
	}
	for _, op := range doc.Operations() {
		if _, path, _ := strings.Cut(op, " "); strings.HasPrefix(path, "/v1/") && !served[op] {
			t.Errorf("openapi.json documents %s, which the API does not serve", op)
		}
	}
}

// TestOpenAPIServed checks the document is served without an API key, and that the
// error responses this package writes on its own (404, 405, 501, 401) match it.
func TestOpenAPIServed(t *testing.T) {
	srv, err := New(Config{Sessions: fakeService{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	doc, err := openapitest.Load(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	resp, body := get("GET", "/v1/openapi.json")
	if resp.StatusCode != 200 || !bytes.Equal(body, OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json = %d, %d bytes; want 200 and the embedded document", resp.StatusCode, len(body))
	}
	if err := doc.ValidateResponse("GET", "/v1/openapi.json", resp.StatusCode, resp.Header, body); err != nil {
		t.Error(err)
	}
	resp, body = get("GET", "/v1/sessions")
	if err := doc.ValidateResponse("GET", "/v1/sessions", resp.StatusCode, resp.Header, body); err != nil || resp.StatusCode != 401 {
		t.Errorf("GET /v1/sessions without a key = %d: %v", resp.StatusCode, err)
	}
	if got := slices.Sorted(slices.Values(doc.Operations())); len(got) < 20 {
		t.Errorf("only %d operations documented", len(got))
	}
}
