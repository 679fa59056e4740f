package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/profiles"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// memBlobs is an in-memory bb.BlobStore for these fast tests; the real one
// (internal/fsblob) runs in the root package's tests with real Chromium.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (m *memBlobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blobs == nil {
		m.blobs = map[string][]byte{}
	}
	m.blobs[key] = b
	return int64(len(b)), nil
}

func (m *memBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, bb.Errorf(bb.CodeNotFound, "blob %q not found", key)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) List(ctx context.Context, prefix string) ([]bb.BlobInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []bb.BlobInfo
	for k, b := range m.blobs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, bb.BlobInfo{Key: k, Size: int64(len(b))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *memBlobs) DeletePrefix(ctx context.Context, prefix string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.blobs {
		if strings.HasPrefix(k, prefix) {
			delete(m.blobs, k)
		}
	}
	return nil
}

// newStorageEnv is newEnv with contexts and extensions on.
func newStorageEnv(t *testing.T) (*env, *memBlobs) {
	t.Helper()
	db := sqlitetest.Open(t)
	signer, err := bb.NewSigner([]byte(rand.Text() + rand.Text()))
	if err != nil {
		t.Fatal(err)
	}
	blobs := &memBlobs{}
	prof, err := profiles.New(profiles.Config{Store: db, Blobs: blobs, SnapshotKey: bytes.Repeat([]byte{3}, profiles.SnapshotKeySize),
		WorkDir: filepath.Join(t.TempDir(), "work")})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: &chrometest.Launcher{}, Signer: signer,
		Parts: []bb.SessionPart{prof}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		prof.Close()
	})
	e := &env{mgr: mgr, logs: new(logBuffer)}
	e.project, e.key = sqlitetest.Project(t, db, 5)
	e.other, e.otherKey = sqlitetest.Project(t, db, 5)
	if e.srv, err = New(Config{Sessions: mgr, Profiles: prof, Logger: slog.New(slog.NewTextHandler(e.logs, nil))}); err != nil {
		t.Fatal(err)
	}
	return e, blobs
}

// raw serves a request whose body is r and returns the response.
func (e *env) raw(t *testing.T, method, path, key string, r io.Reader, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, r)
	req.Header.Set("X-BB-API-Key", key)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	return w
}

func keys(v map[string]any) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// wantError checks an error response: status, the spec §1.5 body and, for 409, that
// the SDKs are told not to retry.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d %s; want %d", w.Code, w.Body, status)
	}
	var body wireError
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.StatusCode != status || body.Message == "" {
		t.Errorf("error body %s; want the error shape with status %d", w.Body, status)
	}
	if status == http.StatusConflict && w.Header().Get("x-should-retry") != "false" {
		t.Errorf("409 without x-should-retry: false")
	}
}

func TestContextsEndpoints(t *testing.T) {
	e, _ := newStorageEnv(t)
	created := e.mustDo(t, request{method: "POST", path: "/v1/contexts", key: e.key, header: jsonHeader,
		body: "{\n  \"projectId\": \"" + e.project.ID + "\",\n  \"name\": \" Shop \"\n}"}, http.StatusCreated)
	if diff := cmp.Diff([]string{"cipherAlgorithm", "id", "initializationVectorSize", "publicKey", "uploadUrl"}, keys(created)); diff != "" {
		t.Errorf("create response fields (-want +got):\n%s", diff)
	}
	if created["cipherAlgorithm"] != "AES-256-CBC" || created["initializationVectorSize"] != float64(16) || created["uploadUrl"] == "" {
		t.Errorf("create response = %v", created)
	}
	if b, _ := pem.Decode([]byte(created["publicKey"].(string))); b == nil || b.Type != "PUBLIC KEY" {
		t.Errorf("publicKey %q is not a PEM public key", created["publicKey"])
	}
	id := created["id"].(string)

	got := e.mustDo(t, request{method: "GET", path: "/v1/contexts/" + id, key: e.key}, http.StatusOK)
	checkGolden(t, "context", normalize(t, got, map[string]string{id: "{contextId}", e.project.ID: "{projectId}"}))

	// The SDK's deprecated update: PUT with a JSON content type and no body.
	put := e.mustDo(t, request{method: "PUT", path: "/v1/contexts/" + id, key: e.key, header: jsonHeader}, http.StatusOK)
	if put["id"] != id || put["publicKey"] == created["publicKey"] || !strings.HasPrefix(put["publicKey"].(string), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("PUT = %v; want the id and a fresh public key", put)
	}

	// Duplicate names: 409, not retried.
	for _, name := range []string{"Shop", "shop", "  SHOP\t"} {
		body, _ := json.Marshal(map[string]string{"name": name})
		wantError(t, e.do(t, request{method: "POST", path: "/v1/contexts", key: e.key, header: jsonHeader, body: string(body)}), http.StatusConflict)
	}
	e.mustDo(t, request{method: "POST", path: "/v1/contexts", key: e.otherKey, body: `{"name":"shop"}`}, http.StatusCreated)
	unnamed := e.mustDo(t, request{method: "POST", path: "/v1/contexts", key: e.key}, http.StatusCreated)
	if v := e.mustDo(t, request{method: "GET", path: "/v1/contexts/" + unnamed["id"].(string), key: e.key}, http.StatusOK); v["name"] != nil {
		t.Errorf("unnamed context has name %v", v["name"])
	}

	wantError(t, e.do(t, request{method: "POST", path: "/v1/contexts", key: e.key, body: `{"name":5}`}), http.StatusBadRequest)
	wantError(t, e.do(t, request{method: "POST", path: "/v1/contexts", key: e.key, body: `{"projectId":"` + e.other.ID + `"}`}), http.StatusUnauthorized)
	wantError(t, e.do(t, request{method: "GET", path: "/v1/contexts/" + id, key: e.otherKey}), http.StatusNotFound)
	wantError(t, e.do(t, request{method: "PUT", path: "/v1/contexts/" + id, key: e.otherKey}), http.StatusNotFound)
	wantError(t, e.do(t, request{method: "GET", path: "/v1/contexts/not-an-id", key: e.key}), http.StatusNotFound)
	wantError(t, e.do(t, request{method: "PATCH", path: "/v1/contexts/" + id, key: e.key}), http.StatusMethodNotAllowed)

	// Sessions on contexts: the contextId shows; an unknown one is 404.
	s := e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key, header: jsonHeader,
		body: `{"browserSettings":{"context":{"id":"` + id + `","persist":true}}}`}, http.StatusCreated)
	if s["contextId"] != id {
		t.Errorf("session contextId = %v; want %s", s["contextId"], id)
	}
	wantError(t, e.do(t, request{method: "POST", path: "/v1/sessions", key: e.key, header: jsonHeader,
		body: `{"browserSettings":{"context":{"id":"` + bb.NewID() + `"}}}`}), http.StatusNotFound)

	// DELETE as the SDK sends it: no body, no content type, Accept */*; then 404.
	w := e.raw(t, "DELETE", "/v1/contexts/"+id, e.key, nil, map[string]string{"Accept": "*/*"})
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("DELETE = %d %q; want 204 with no body", w.Code, w.Body)
	}
	wantError(t, e.do(t, request{method: "GET", path: "/v1/contexts/" + id, key: e.key}), http.StatusNotFound)
	wantError(t, e.do(t, request{method: "DELETE", path: "/v1/contexts/" + id, key: e.key, header: jsonHeader}), http.StatusNotFound)
}

// multipartBody returns a multipart body with the given parts (field name → file
// name and content) in order, and its content type.
func multipartBody(t *testing.T, parts ...[3]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[1] == "" {
			w, err = mw.CreateFormField(p[0])
		} else {
			w, err = mw.CreateFormFile(p[0], p[1])
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[2])
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func zipOf(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, _ := zw.Create(name)
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestExtensionsEndpoints(t *testing.T) {
	e, blobs := newStorageEnv(t)
	good := zipOf(t, map[string]string{"manifest.json": `{"manifest_version":3,"name":"x","version":"1"}`})
	body, ct := multipartBody(t, [3]string{"note", "", "ignored"}, [3]string{"file", "stagehand-extension.zip", good})
	w := e.raw(t, "POST", "/v1/extensions", e.key, body, map[string]string{"Content-Type": ct})
	if w.Code != http.StatusOK {
		t.Fatalf("upload = %d %s; want 200", w.Code, w.Body)
	}
	var created, golden map[string]any
	json.Unmarshal(w.Body.Bytes(), &created)
	json.Unmarshal(w.Body.Bytes(), &golden)
	id := created["id"].(string)
	checkGolden(t, "extension", normalize(t, golden, map[string]string{id: "{extensionId}", e.project.ID: "{projectId}"}))
	if got := e.mustDo(t, request{method: "GET", path: "/v1/extensions/" + id, key: e.key}, http.StatusOK); !cmp.Equal(got, created) {
		t.Errorf("GET = %v; want %v", got, created)
	}
	wantError(t, e.do(t, request{method: "GET", path: "/v1/extensions/" + id, key: e.otherKey}), http.StatusNotFound)

	// Sessions with the extension, top level or in browserSettings; unknown: 404.
	e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key, body: `{"extensionId":"` + id + `"}`}, http.StatusCreated)
	e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key, body: `{"browserSettings":{"extensionId":"` + id + `"}}`}, http.StatusCreated)
	wantError(t, e.do(t, request{method: "POST", path: "/v1/sessions", key: e.key, body: `{"extensionId":"` + bb.NewID() + `"}`}), http.StatusNotFound)
	// The top-level extensionId wins over browserSettings.extensionId (docs/COMPATIBILITY.md).
	e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key,
		body: `{"extensionId":"` + id + `","browserSettings":{"extensionId":"` + bb.NewID() + `"}}`}, http.StatusCreated)

	w = e.raw(t, "DELETE", "/v1/extensions/"+id, e.key, nil, map[string]string{"Accept": "*/*"})
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("DELETE = %d %q; want 204 with no body", w.Code, w.Body)
	}
	wantError(t, e.do(t, request{method: "GET", path: "/v1/extensions/" + id, key: e.key}), http.StatusNotFound)
	wantError(t, e.do(t, request{method: "DELETE", path: "/v1/extensions/" + id, key: e.key}), http.StatusNotFound)
	if list, _ := blobs.List(t.Context(), "extensions/"+id+"/"); len(list) != 0 {
		t.Errorf("blobs after delete: %v", list)
	}

	bad := []struct {
		name   string
		parts  [][3]string
		ct     string // overrides the multipart content type
		status int
	}{
		{name: "JSON body", ct: "application/json", status: http.StatusUnsupportedMediaType},
		{name: "no content type", ct: "-", status: http.StatusUnsupportedMediaType},
		{name: "no boundary", ct: "multipart/form-data", status: http.StatusUnsupportedMediaType},
		{name: "no file part", parts: [][3]string{{"other", "x.zip", good}}, status: http.StatusBadRequest},
		{name: "empty body", parts: [][3]string{}, status: http.StatusBadRequest},
		{name: "not a zip", parts: [][3]string{{"file", "x.zip", "hello"}}, status: http.StatusBadRequest},
		{name: "no manifest", parts: [][3]string{{"file", "x.zip", zipOf(t, map[string]string{"a.js": "1"})}}, status: http.StatusBadRequest},
		{name: "zip slip", parts: [][3]string{{"file", "x.zip", zipOf(t, map[string]string{"manifest.json": `{"manifest_version":3,"name":"x","version":"1"}`, "../x": "1"})}}, status: http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.parts...)
			if tt.ct == "-" {
				ct = ""
			} else if tt.ct != "" {
				ct = tt.ct
			}
			wantError(t, e.raw(t, "POST", "/v1/extensions", e.key, body, map[string]string{"Content-Type": ct}), tt.status)
		})
	}
	t.Run("too large", func(t *testing.T) {
		head, ct := multipartBody(t, [3]string{"file", "big.zip", ""})
		b, _ := io.ReadAll(head)
		i := bytes.Index(b, []byte("\r\n--")) // the end of the (empty) file part
		body := io.MultiReader(bytes.NewReader(b[:i]), io.LimitReader(zeroReader{}, bb.MaxExtensionSize+1), bytes.NewReader(b[i:]))
		wantError(t, e.raw(t, "POST", "/v1/extensions", e.key, body, map[string]string{"Content-Type": ct}), http.StatusRequestEntityTooLarge)
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestStorageNotImplemented checks that a server without Profiles answers the
// contexts and extensions endpoints, and a create naming a context or an extension, as
// a server without storage does (503 "not configured"), and that without Artifacts an upload is a 501; every one says
// x-should-retry: false, or the official SDK retries a multipart upload whose body it
// has spent and reports "Connection error".
func TestStorageNotImplemented(t *testing.T) {
	s, err := New(Config{Sessions: fakeService{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/v1/contexts", 503}, {"GET", "/v1/contexts/x", 503}, {"PUT", "/v1/contexts/x", 503}, {"DELETE", "/v1/contexts/x", 503},
		{"POST", "/v1/extensions", 503}, {"GET", "/v1/extensions/x", 503}, {"DELETE", "/v1/extensions/x", 503},
		{"POST", "/v1/sessions/" + bb.NewID() + "/uploads", 501}, {"GET", "/v1/sessions/" + bb.NewID() + "/logs", 501},
		{"POST", "/v1/sessions#context", 503}, {"POST", "/v1/sessions#extension", 503},
	} {
		body := "--b\r\n"
		path, kind, _ := strings.Cut(r.path, "#")
		switch kind {
		case "context":
			body = `{"browserSettings":{"context":{"id":"` + bb.NewID() + `"}}}`
		case "extension":
			body = `{"extensionId":"` + bb.NewID() + `"}`
		}
		req := httptest.NewRequestWithContext(t.Context(), r.method, path, strings.NewReader(body))
		if kind != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-BB-API-Key", "k")
		if kind == "" {
			req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != r.want || w.Header().Get("x-should-retry") != "false" {
			t.Errorf("%s %s = %d, x-should-retry %q; want %d, false", r.method, r.path, w.Code, w.Header().Get("x-should-retry"), r.want)
		}
		if r.want == 503 && !strings.Contains(w.Body.String(), "contexts and extensions are not configured") {
			t.Errorf("%s %s body %s; want the not-configured message", r.method, r.path, w.Body)
		}
	}
}
