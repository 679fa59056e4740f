package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// env is a Server over a real Manager, SQLite store and fake launcher, with two
// projects, each with its own API key.
type env struct {
	srv      *Server
	mgr      *bb.Manager
	project  *bb.Project
	key      string
	other    *bb.Project // another project, for isolation tests
	otherKey string
	logs     *logBuffer
}

// newEnv returns an env whose first project allows concurrency live sessions.
func newEnv(t *testing.T, concurrency int, cfg Config) *env {
	t.Helper()
	db := sqlitetest.Open(t)
	signer, err := bb.NewSigner([]byte(rand.Text() + rand.Text())) // 52 random characters
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: &chrometest.Launcher{}, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	e := &env{mgr: mgr, logs: new(logBuffer)}
	e.project, e.key = sqlitetest.Project(t, db, concurrency)
	e.other, e.otherKey = sqlitetest.Project(t, db, 5)
	cfg.Sessions = mgr
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// request is one API call.
type request struct {
	method, path, body string
	key                string            // X-BB-API-Key; "" sends none
	header             map[string]string // extra headers
}

// do serves req and returns the response, checking what every response has: a JSON
// content type and an x-request-id.
func (e *env) do(t *testing.T, req request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), req.method, req.path, strings.NewReader(req.body))
	if req.key != "" {
		r.Header.Set("X-BB-API-Key", req.key)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q; want application/json", req.method, req.path, ct)
	}
	if !bb.ValidID(w.Header().Get("x-request-id")) {
		t.Errorf("%s %s: x-request-id = %q; want a generated id", req.method, req.path, w.Header().Get("x-request-id"))
	}
	return w
}

// mustDo is do that fails the test unless the status is want, and decodes the body.
func (e *env) mustDo(t *testing.T, req request, want int) map[string]any {
	t.Helper()
	w := e.do(t, req)
	if w.Code != want {
		t.Fatalf("%s %s = %d %s; want %d", req.method, req.path, w.Code, w.Body, want)
	}
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s %s: decode %s: %v", req.method, req.path, w.Body, err)
	}
	return v
}

// create creates a session with body and returns its id.
func (e *env) create(t *testing.T, body string) string {
	t.Helper()
	v := e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key, body: body,
		header: map[string]string{"Content-Type": "application/json"}}, http.StatusCreated)
	id, _ := v["id"].(string)
	return id
}

var timestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// normalize replaces what changes from run to run in a decoded response: every
// timestamp (after checking its format) by "{time}", and each key of subs, wherever it
// occurs in a string, by its value.
func normalize(t *testing.T, v any, subs map[string]string) any {
	t.Helper()
	olds := make([]string, 0, len(subs))
	for old := range subs {
		olds = append(olds, old)
	}
	// Longest first: a signing key contains its session id.
	slices.SortFunc(olds, func(a, b string) int { return len(b) - len(a) })
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				v[k] = walk(k, x)
			}
		case []any:
			for i, x := range v {
				v[i] = walk(key, x)
			}
		case string:
			if strings.HasSuffix(key, "At") {
				if !timestamp.MatchString(v) {
					t.Errorf("%s = %q; want RFC 3339 UTC with milliseconds", key, v)
				}
				return "{time}"
			}
			for _, old := range olds {
				v = strings.ReplaceAll(v, old, subs[old])
			}
			return v
		}
		return v
	}
	return walk("", v)
}

// checkGolden compares got, a decoded JSON value, with testdata/name.golden.json, or
// rewrites the file with -update.
func checkGolden(t *testing.T, name string, got any) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Round-trip got so both sides have the same dynamic types.
	gb, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var gotv any
	if err := json.Unmarshal(gb, &gotv); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gotv, want); diff != "" {
		t.Errorf("%s mismatch (-got +want):\n%s", path, diff)
	}
}

func decodeAny(t *testing.T, w *httptest.ResponseRecorder) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return v
}

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonUnmarshalStrict decodes b into v, failing on fields v does not have.
func jsonUnmarshalStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
