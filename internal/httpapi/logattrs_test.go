package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// TestAccessLogFields checks the access log line names the route, the key's project and the
// session, so that one grep finds every request about a session.
func TestAccessLogFields(t *testing.T) {
	var buf bytes.Buffer
	srv, err := New(Config{Sessions: fakeService{err: bb.Errorf(bb.CodeNotFound, "Session not found")}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/sessions/abc", nil)
	req.Header.Set("X-BB-API-Key", "any")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	got := map[string]any{"route": line["route"], "project_id": line["project_id"], "session_id": line["session_id"],
		"request_id": line["request_id"] == rec.Header().Get("x-request-id")}
	want := map[string]any{"route": "GET /v1/sessions/{id}", "project_id": "p", "session_id": "abc", "request_id": true}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("access log (-got +want):\n%s\nline: %s", diff, buf.String())
	}

	buf.Reset()
	srv.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/contexts/c1", nil))
	line = nil
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["context_id"] != "c1" || line["project_id"] != nil || line["status"] != float64(401) {
		t.Errorf("unauthenticated request's log line: %s", buf.String())
	}
}
