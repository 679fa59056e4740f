package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

// fakeService accepts any non-empty key (for project "p") and fails every other call
// with err; with a nil err, lists are empty.
type fakeService struct{ err error }

func (f fakeService) Authenticate(ctx context.Context, rawKey string) (*bb.APIKey, error) {
	if rawKey == "" {
		return nil, bb.Errorf(bb.CodeUnauthorized, "Unauthorized")
	}
	return &bb.APIKey{ProjectID: "p"}, nil
}
func (f fakeService) CreateSession(context.Context, string, bb.CreateSessionRequest) (*bb.Session, error) {
	return nil, f.err
}
func (f fakeService) Session(context.Context, string, string) (*bb.Session, error) { return nil, f.err }
func (f fakeService) Sessions(context.Context, string, bb.SessionFilter) ([]*bb.Session, error) {
	return nil, f.err
}
func (f fakeService) ReleaseSession(context.Context, string, string) (*bb.Session, error) {
	return nil, f.err
}
func (f fakeService) Projects(context.Context, string) ([]*bb.Project, error) { return nil, f.err }
func (f fakeService) Project(context.Context, string, string) (*bb.Project, error) {
	return nil, f.err
}
func (f fakeService) Usage(context.Context, string, string) (bb.ProjectUsage, error) {
	return bb.ProjectUsage{}, f.err
}
func (f fakeService) SigningKey(id string) string { return id + ".sig" }

func TestWriteError(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantMsg     string
		wantNoRetry bool
		wantRetry   bool // x-should-retry: true
		wantLogged  bool
	}{
		{name: "invalid", err: bb.Errorf(bb.CodeInvalid, "body/x must be y"), wantStatus: 400, wantMsg: "body/x must be y", wantNoRetry: true},
		{name: "unauthorized", err: bb.Errorf(bb.CodeUnauthorized, "Unauthorized"), wantStatus: 401, wantMsg: "Unauthorized", wantNoRetry: true},
		{name: "forbidden", err: bb.Errorf(bb.CodeForbidden, "no"), wantStatus: 403, wantMsg: "no", wantNoRetry: true},
		{name: "not found", err: bb.Errorf(bb.CodeNotFound, "Session not found"), wantStatus: 404, wantMsg: "Session not found", wantNoRetry: true},
		{name: "conflict", err: bb.Errorf(bb.CodeConflict, "busy"), wantStatus: 409, wantMsg: "busy"},
		{name: "conflict without retry", err: &bb.Error{Code: bb.CodeConflict, Message: "name taken", NoRetry: true}, wantStatus: 409, wantMsg: "name taken", wantNoRetry: true},
		{name: "gone", err: bb.Errorf(bb.CodeGone, "ended"), wantStatus: 410, wantMsg: "ended", wantNoRetry: true},
		{name: "too large", err: bb.Errorf(bb.CodeTooLarge, "big"), wantStatus: 413, wantMsg: "big", wantNoRetry: true},
		{name: "unsupported", err: bb.Errorf(bb.CodeUnsupported, "not multipart"), wantStatus: 415, wantMsg: "not multipart", wantNoRetry: true},
		{name: "unprocessable", err: bb.Errorf(bb.CodeUnprocessable, "no logs"), wantStatus: 422, wantMsg: "no logs", wantNoRetry: true},
		{name: "limit", err: bb.ConcurrencyLimitError(3, 3), wantStatus: 429, wantMsg: "You've exceeded your max concurrent sessions limit (limit 3, currently 3). Please contact support to increase your limit.", wantNoRetry: true},
		{name: "unavailable", err: bb.Errorf(bb.CodeUnavailable, "shutting down"), wantStatus: 503, wantMsg: "shutting down", wantLogged: true},
		{name: "unavailable, retry", err: &bb.Error{Code: bb.CodeUnavailable, Message: "end not recorded", Retry: true}, wantStatus: 503, wantMsg: "end not recorded", wantRetry: true, wantLogged: true},
		{name: "wrapped", err: fmt.Errorf("load: %w", bb.Errorf(bb.CodeNotFound, "Project not found")), wantStatus: 404, wantMsg: "Project not found", wantNoRetry: true},
		{name: "internal message hidden", err: &bb.Error{Code: bb.CodeInternal, Message: "secret detail", Err: errors.New("cause")}, wantStatus: 500, wantMsg: "Internal Server Error", wantLogged: true},
		{name: "unclassified", err: errors.New("select: database is locked"), wantStatus: 500, wantMsg: "Internal Server Error", wantLogged: true},
		{name: "unknown code", err: bb.Errorf("weird", "x"), wantStatus: 500, wantMsg: "x", wantLogged: true},
		{name: "not implemented", err: &statusError{status: 501, msg: "nope"}, wantStatus: 501, wantMsg: "nope", wantNoRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			s, err := New(Config{Sessions: fakeService{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/v1/x", nil)
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey, "req-1"))
			w := httptest.NewRecorder()
			s.writeError(w, r, tt.err)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d", w.Code, tt.wantStatus)
			}
			checkErrorBody(t, w.Body.Bytes(), tt.wantStatus, tt.wantMsg)
			if got := w.Header().Get("x-should-retry") == "false"; got != tt.wantNoRetry {
				t.Errorf("x-should-retry: false sent = %v; want %v", got, tt.wantNoRetry)
			}
			if got := w.Header().Get("x-should-retry") == "true"; got != tt.wantRetry {
				t.Errorf("x-should-retry: true sent = %v; want %v", got, tt.wantRetry)
			}
			if got := strings.Contains(logs.String(), "level=ERROR"); got != tt.wantLogged {
				t.Errorf("logged = %v; want %v:\n%s", got, tt.wantLogged, logs.String())
			}
			if tt.wantLogged && !strings.Contains(logs.String(), "request_id=req-1") {
				t.Errorf("error log lacks the request id:\n%s", logs.String())
			}
		})
	}
}

// TestInternalError checks that a store failure reaches the client as a bare 500 and
// the log with its cause.
func TestInternalError(t *testing.T) {
	var logs logBuffer
	s, err := New(Config{Sessions: fakeService{err: errors.New("sqlite: disk I/O error at /var/lib/x")}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/sessions", "/v1/sessions/" + bb.NewID(), "/v1/projects", "/v1/projects/p", "/v1/projects/p/usage"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-BB-API-Key", "k")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("GET %s = %d; want 500", path, w.Code)
		}
		checkErrorBody(t, w.Body.Bytes(), 500, "Internal Server Error")
		if !strings.Contains(logs.String(), "disk I/O error") || !strings.Contains(logs.String(), w.Header().Get("x-request-id")) {
			t.Errorf("log lacks the cause or request id:\n%s", logs.String())
		}
	}
}

// TestEmptyLists checks that empty lists are [] and not null.
func TestEmptyLists(t *testing.T) {
	s, err := New(Config{Sessions: fakeService{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/sessions", "/v1/projects"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-BB-API-Key", "k")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != "[]" {
			t.Errorf("GET %s = %d %q; want 200 []", path, w.Code, w.Body)
		}
	}
}
