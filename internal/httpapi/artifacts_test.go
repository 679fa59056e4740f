package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/artifacts"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// artifactEnv is an API with real artifacts (SQLite, files) and fake browsers.
type artifactEnv struct {
	*env
	art   *artifacts.Service
	blobs string // the blob store's directory
	db    *sqlite.DB
}

func newArtifactEnv(t testing.TB, uploadLimit int64, opts ...func(*bb.ManagerConfig)) *artifactEnv {
	t.Helper()
	db := sqlitetest.Open(t)
	dir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	art, err := artifacts.New(artifacts.Config{Store: db, Sessions: db, Blobs: blobs, SpoolDir: filepath.Join(dir, "spool"),
		RecordByDefault: true, UploadLimit: uploadLimit, Retention: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := art.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	signer, err := bb.NewSigner([]byte(rand.Text() + rand.Text()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bb.ManagerConfig{Store: db, Launcher: &chrometest.Launcher{RunDir: filepath.Join(dir, "run")}, Signer: signer, Parts: []bb.SessionPart{art}}
	for _, o := range opts {
		o(&cfg)
	}
	mgr, err := bb.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	art.SetRuns(mgr)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		art.Close()
	})
	e := &env{mgr: mgr, logs: new(logBuffer)}
	e.project, e.key = sqlitetest.Project(t, db, 5)
	e.other, e.otherKey = sqlitetest.Project(t, db, 5)
	if e.srv, err = New(Config{Sessions: mgr, Artifacts: art, Logger: slog.New(slog.NewTextHandler(e.logs, nil))}); err != nil {
		t.Fatal(err)
	}
	return &artifactEnv{env: e, art: art, blobs: blobs.Root(), db: db}
}

func (e *artifactEnv) live(t *testing.T, id string) bb.LiveSession {
	t.Helper()
	l, ok := e.art.Live(id)
	if !ok {
		t.Fatalf("session %s is not live in artifacts", id)
	}
	return l
}

func (e *artifactEnv) release(t *testing.T, id string) {
	t.Helper()
	e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + id, key: e.key, body: `{"status":"REQUEST_RELEASE"}`}, http.StatusOK)
	deadline := time.Now().Add(10 * time.Second)
	for { // the run moves the downloads once the browser has stopped, then goes with the session
		if _, ok := e.art.Live(id); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("artifacts still live after release")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func unzip(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip (%d bytes): %v", len(b), err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		r.Close()
		out[f.Name] = string(body)
	}
	return out
}

func TestDownloadsEndpoint(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	get := func(key string) *http.Response {
		w := e.raw(t, "GET", "/v1/sessions/"+id+"/downloads", key, nil, map[string]string{"Accept": "application/zip"})
		return w.Result()
	}
	res := get(e.key)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/zip" || len(body) != 22 {
		t.Fatalf("no downloads = %d %q %d bytes; want 200, a 22-byte zip", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	dl := e.live(t, id).DownloadDir
	os.WriteFile(filepath.Join(dl, "report.pdf"), []byte("pdf"), 0o600)
	os.WriteFile(filepath.Join(dl, "Unconfirmed 1.crdownload"), []byte("partial"), 0o600)
	mtime := time.UnixMilli(1719265797164)
	os.Chtimes(filepath.Join(dl, "report.pdf"), mtime, mtime)
	res = get(e.key)
	body, _ = io.ReadAll(res.Body)
	if diff := cmp.Diff(map[string]string{"report-1719265797164.pdf": "pdf"}, unzip(t, body)); diff != "" {
		t.Errorf("during the session (-want +got):\n%s", diff)
	}
	os.WriteFile(filepath.Join(dl, "data.tar.gz"), []byte("tgz"), 0o600)
	os.Chtimes(filepath.Join(dl, "data.tar.gz"), mtime, mtime)
	os.WriteFile(filepath.Join(dl, "we\\ird\x01.txt"), []byte("odd"), 0o600) // any byte but / is allowed
	os.Chtimes(filepath.Join(dl, "we\\ird\x01.txt"), mtime, mtime)
	e.release(t, id)
	if _, err := os.Stat(dl); !os.IsNotExist(err) {
		t.Errorf("spool left after the session: %v", err)
	}
	res = get(e.key)
	body, _ = io.ReadAll(res.Body)
	want := map[string]string{"report-1719265797164.pdf": "pdf", "data.tar-1719265797164.gz": "tgz", "ird_-1719265797164.txt": "odd"}
	if diff := cmp.Diff(want, unzip(t, body)); diff != "" {
		t.Errorf("after the session (-want +got):\n%s", diff)
	}
	wantError(t, e.raw(t, "GET", "/v1/sessions/"+id+"/downloads", e.otherKey, nil, nil), http.StatusNotFound)
	wantError(t, e.raw(t, "GET", "/v1/sessions/"+bb.NewID()+"/downloads", e.key, nil, nil), http.StatusNotFound)
	wantError(t, e.raw(t, "GET", "/v1/sessions/nope/downloads", e.key, nil, nil), http.StatusNotFound)
	wantError(t, e.raw(t, "GET", "/v1/sessions/"+id+"/downloads", "bad key", nil, nil), http.StatusUnauthorized)
}

func TestUploadsEndpoint(t *testing.T) {
	const limit = 1024
	e := newArtifactEnv(t, limit)
	id := e.create(t, `{}`)
	other := e.createFor(t, e.otherKey)
	up := e.live(t, id).UploadDir
	post := func(key, sid string, body io.Reader, ct string) *httptestRecorder {
		return e.raw(t, "POST", "/v1/sessions/"+sid+"/uploads", key, body, map[string]string{"Content-Type": ct})
	}
	body, ct := multipartBody(t, [3]string{"note", "", "x"}, [3]string{"file", "hello.txt", "hello"})
	w := post(e.key, id, body, ct)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"message":"File uploaded successfully"}` {
		t.Fatalf("upload = %d %s", w.Code, w.Body)
	}
	if b, err := os.ReadFile(filepath.Join(up, "hello.txt")); err != nil || string(b) != "hello" {
		t.Errorf("uploaded file = %q, %v", b, err)
	}
	// The same name again replaces the file.
	body, ct = multipartBody(t, [3]string{"file", "hello.txt", "second"})
	if w := post(e.key, id, body, ct); w.Code != 200 {
		t.Fatalf("second upload = %d %s", w.Code, w.Body)
	}
	if b, _ := os.ReadFile(filepath.Join(up, "hello.txt")); string(b) != "second" {
		t.Errorf("after a same-name upload = %q; want the new content", b)
	}
	// A path in the name keeps only its last element.
	body, ct = multipartBody(t, [3]string{"file", `..\..\evil.txt`, "e"})
	if w := post(e.key, id, body, ct); w.Code != 200 {
		t.Fatalf("upload with a path = %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(filepath.Join(up, "evil.txt")); err != nil {
		t.Errorf("evil.txt not stored under its base name: %v", err)
	}
	before := listDir(t, up)

	okBody := func() (io.Reader, string) { return multipartBody(t, [3]string{"file", "new.txt", "n"}) }
	tests := []struct {
		name   string
		key    string
		sid    string
		body   func() (io.Reader, string)
		status int
	}{
		{"other project", e.otherKey, id, okBody, 404},
		{"other project's session", e.key, other, okBody, 404},
		{"unknown session", e.key, bb.NewID(), okBody, 404},
		{"not multipart", e.key, id, func() (io.Reader, string) { return strings.NewReader("raw"), "application/octet-stream" }, 415},
		{"no content type", e.key, id, func() (io.Reader, string) { return strings.NewReader("raw"), "" }, 415},
		{"no boundary", e.key, id, func() (io.Reader, string) { b, _ := okBody(); return b, "multipart/form-data" }, 415},
		{"no file part", e.key, id, func() (io.Reader, string) { return multipartBody(t, [3]string{"other", "a.txt", "a"}) }, 400},
		{"dot-dot name", e.key, id, func() (io.Reader, string) { return multipartBody(t, [3]string{"file", "..", "a"}) }, 400},
		{"no file name", e.key, id, func() (io.Reader, string) { return multipartBody(t, [3]string{"file", "", "a"}) }, 400},
		{"malformed multipart", e.key, id, func() (io.Reader, string) {
			return strings.NewReader("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nunterminated"), "multipart/form-data; boundary=xyz"
		}, 400},
		{"too large", e.key, id, func() (io.Reader, string) {
			return multipartBody(t, [3]string{"file", "big.bin", strings.Repeat("x", limit+1)})
		}, 413},
		{"far too large", e.key, id, func() (io.Reader, string) {
			return multipartBody(t, [3]string{"file", "big.bin", strings.Repeat("x", 2<<20)})
		}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ct := tt.body()
			wantError(t, post(tt.key, tt.sid, b, ct), tt.status)
			if diff := cmp.Diff(before, listDir(t, up)); diff != "" {
				t.Errorf("uploads changed (-before +after):\n%s", diff)
			}
		})
	}
	// Exactly the limit is fine.
	body, ct = multipartBody(t, [3]string{"file", "max.bin", strings.Repeat("m", limit)})
	if w := post(e.key, id, body, ct); w.Code != 200 {
		t.Errorf("upload of exactly the limit = %d %s", w.Code, w.Body)
	}
	e.release(t, id)
	body, ct = okBody()
	wantError(t, post(e.key, id, body, ct), http.StatusNotFound)
}

type httptestRecorder = httptest.ResponseRecorder

// getList GETs a JSON array.
func (e *artifactEnv) getList(t *testing.T, path, key string) []any {
	t.Helper()
	w := e.do(t, request{method: "GET", path: path, key: key})
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
	}
	var v []any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v == nil {
		t.Fatalf("GET %s: %s is not an array: %v", path, w.Body, err)
	}
	return v
}

func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, en.Name()))
		out[en.Name()] = string(b)
	}
	return out
}

func TestLogsAndRecordingEndpoints(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	quiet := e.create(t, `{"browserSettings":{"logSession":false,"recordSession":false}}`)
	got := e.getList(t, "/v1/sessions/"+id+"/logs", e.key)
	if diff := cmp.Diff([]any{}, got); diff != "" {
		t.Errorf("logs before any command (-want +got):\n%s", diff)
	}
	at := time.UnixMilli(1700000000000)
	e.art.RecordCDP(bb.CDPExchange{SessionID: id, Method: "Page.navigate", CDPSessionID: "S1",
		Request: []byte(`{"id":1,"method":"Page.navigate","params":{"url":"https://example.com"},"sessionId":"S1"}`), RequestSize: 83, RequestAt: at,
		Response: []byte(`{"id":1,"result":{"frameId":"F","loaderId":"L"},"sessionId":"S1"}`), ResponseSize: 64, ResponseAt: at.Add(time.Second)})
	e.art.RecordCDP(bb.CDPExchange{SessionID: id, Method: "Page.captureScreenshot",
		Request: []byte(`{"id":2,"method":"Page.captureScreenshot"}`), RequestSize: 42, RequestAt: at,
		Response: []byte(`{"id":2,"result":{"data":"iVBOR`), ResponseSize: 4 << 20, ResponseAt: at})
	got = e.getList(t, "/v1/sessions/"+id+"/logs", e.key)
	want := []any{
		map[string]any{"method": "Page.navigate", "pageId": 1.0, "sessionId": id, "timestamp": 1700000000000.0, "frameId": "F", "loaderId": "L",
			"request":  map[string]any{"params": map[string]any{"url": "https://example.com"}, "rawBody": `{"id":1,"method":"Page.navigate","params":{"url":"https://example.com"},"sessionId":"S1"}`, "timestamp": 1700000000000.0},
			"response": map[string]any{"result": map[string]any{"frameId": "F", "loaderId": "L"}, "rawBody": `{"id":1,"result":{"frameId":"F","loaderId":"L"},"sessionId":"S1"}`, "timestamp": 1700000001000.0}},
		map[string]any{"method": "Page.captureScreenshot", "pageId": 0.0, "sessionId": id, "timestamp": 1700000000000.0,
			"request":  map[string]any{"params": map[string]any{}, "rawBody": `{"id":2,"method":"Page.captureScreenshot"}`, "timestamp": 1700000000000.0},
			"response": map[string]any{"result": map[string]any{"browserdTruncated": true, "size": float64(4 << 20)}, "rawBody": `{"id":2,"result":{"data":"iVBOR` + bb.TruncationMarker, "timestamp": 1700000000000.0}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
	got = e.getList(t, "/v1/sessions/"+id+"/recording", e.key)
	if diff := cmp.Diff([]any{}, got); diff != "" {
		t.Errorf("recording without events (-want +got):\n%s", diff)
	}
	for _, p := range []string{"/logs", "/recording"} {
		wantError(t, e.do(t, request{method: "GET", path: "/v1/sessions/" + quiet + p, key: e.key}), http.StatusUnprocessableEntity)
		wantError(t, e.do(t, request{method: "GET", path: "/v1/sessions/" + id + p, key: e.otherKey}), http.StatusNotFound)
		wantError(t, e.do(t, request{method: "GET", path: "/v1/sessions/" + bb.NewID() + p, key: e.key}), http.StatusNotFound)
	}
	// Retention: once expired, the artifacts are gone and the endpoints say so; those
	// of a session still running stay.
	os.WriteFile(filepath.Join(e.live(t, id).DownloadDir, "gone.txt"), []byte("g"), 0o600)
	e.release(t, id)
	keep := e.create(t, `{}`)
	e.art.RecordCDP(bb.CDPExchange{SessionID: keep, Method: "X", Request: []byte(`{}`), RequestSize: 2, RequestAt: at})
	os.WriteFile(filepath.Join(e.live(t, keep).DownloadDir, "k.txt"), []byte("k"), 0o600)
	e.getList(t, "/v1/sessions/"+keep+"/logs", e.key)
	if n, err := e.art.PurgeExpired(t.Context(), time.Now()); err != nil || n != 0 {
		t.Errorf("PurgeExpired(now) = %d, %v; want nothing expired yet", n, err)
	}
	if n, err := e.art.PurgeExpired(t.Context(), time.Now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeExpired(+2h) = %d, %v; want 1 session", n, err)
	}
	for _, p := range []string{"/logs", "/recording", "/downloads"} {
		wantError(t, e.raw(t, "GET", "/v1/sessions/"+id+p, e.key, nil, nil), http.StatusUnprocessableEntity)
	}
	if _, err := os.Stat(filepath.Join(e.blobs, "sessions", id)); !os.IsNotExist(err) {
		t.Errorf("blobs of the purged session left: %v", err)
	}
	if logs := e.getList(t, "/v1/sessions/"+keep+"/logs", e.key); len(logs) != 1 {
		t.Errorf("the running session lost its logs: %v", logs)
	}
	res := e.raw(t, "GET", "/v1/sessions/"+keep+"/downloads", e.key, nil, nil)
	if files := unzip(t, res.Body.Bytes()); len(files) != 1 {
		t.Errorf("the running session lost its downloads: %v", files)
	}
}

// TestSpoolRecovery: downloads a crashed run left in the spool move to blobs at the next
// start, and the spool is emptied.
func TestSpoolRecovery(t *testing.T) {
	dir := t.TempDir()
	id := bb.NewID()
	dl := filepath.Join(dir, "spool", id, "downloads")
	if err := os.MkdirAll(dl, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dl, "left.txt"), []byte("left behind"), 0o600)
	os.WriteFile(filepath.Join(dl, "half.bin.crdownload"), []byte("partial"), 0o600)
	os.MkdirAll(filepath.Join(dir, "spool", "not-a-session"), 0o700)
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	db := sqlitetest.Open(t)
	art, err := artifacts.New(artifacts.Config{Store: db, Sessions: db, Blobs: blobs, SpoolDir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	if err := art.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	list, err := blobs.List(t.Context(), "sessions/"+id+"/downloads/")
	if err != nil || len(list) != 1 || !strings.HasPrefix(path.Base(list[0].Key), "left-") {
		t.Fatalf("recovered blobs = %+v, %v; want left-<ms>.txt only", list, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spool", id)); !os.IsNotExist(err) {
		t.Errorf("spool of the crashed session still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spool", "not-a-session")); err != nil {
		t.Errorf("a directory that is no session's was touched: %v", err)
	}
}

// TestBrowserDirTraps: the browser's uid owns its directory and may plant links and
// FIFOs there (security review F1/F2). Downloads never read through a link or hang on
// a FIFO, and an upload never writes through a link, whatever the browser put there.
func TestBrowserDirTraps(t *testing.T) {
	e := newArtifactEnv(t, 1<<20)
	id := e.create(t, `{}`)
	live := e.live(t, id)
	outside := t.TempDir()
	secret := filepath.Join(outside, "browserd.db")
	if err := os.WriteFile(secret, []byte("SIGNING-SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	// downloads/: a link to a server file, a FIFO, and one honest file.
	os.Symlink(secret, filepath.Join(live.DownloadDir, "stolen.db"))
	if err := syscall.Mkfifo(filepath.Join(live.DownloadDir, "hang.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(live.DownloadDir, "ok.txt"), []byte("ok"), 0o600)
	res := e.raw(t, "GET", "/v1/sessions/"+id+"/downloads", e.key, nil, nil)
	files := unzip(t, res.Body.Bytes())
	for name, body := range files {
		if strings.Contains(body, "SIGNING-SECRET") || !strings.HasPrefix(name, "ok-") {
			t.Errorf("downloads hold %s = %q; want only ok-<ms>.txt", name, body)
		}
	}
	if len(files) != 1 {
		t.Errorf("downloads = %v; want ok-<ms>.txt", files)
	}
	// uploads/ replaced by a link to a directory of the server's.
	if err := os.RemoveAll(live.UploadDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, live.UploadDir); err != nil {
		t.Fatal(err)
	}
	body, ct := multipartBody(t, [3]string{"file", "planted.txt", "planted"})
	w := e.raw(t, "POST", "/v1/sessions/"+id+"/uploads", e.key, body, map[string]string{"Content-Type": ct})
	if w.Code == 200 {
		t.Errorf("upload through a planted link = 200; want an error")
	}
	entries, _ := os.ReadDir(outside)
	for _, en := range entries {
		if en.Name() != "browserd.db" {
			t.Errorf("the upload wrote %s outside the browser's directory", en.Name())
		}
	}
	e.release(t, id)
}
