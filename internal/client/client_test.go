package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/client"
	"github.com/google/go-cmp/cmp"
)

// seen is one request as the fake server received it.
type seen struct {
	Method, Path, Query, Body, ContentType, Key, UserAgent string
}

// fake serves one answer per "METHOD /path" and records every request.
type fake struct {
	t       *testing.T
	answers map[string]answer
	got     []seen
}

type answer struct {
	status int
	body   string
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read request body: %v", err)
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		b = []byte(multipartFile(f.t, r.Header.Get("Content-Type"), b))
	}
	f.got = append(f.got, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Content-Type"),
		r.Header.Get("X-BB-API-Key"), r.Header.Get("User-Agent")})
	a, ok := f.answers[r.Method+" "+r.URL.Path]
	if !ok {
		a = answer{http.StatusNotFound, `{"statusCode":404,"code":404,"error":"Not Found","message":"no such route"}`}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// multipartFile returns "name=content" of the part "file" of a multipart body.
func multipartFile(t *testing.T, ctype string, body []byte) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	f, h, err := r.FormFile("file")
	if err != nil {
		t.Errorf("multipart body without a file part: %v", err)
		return ""
	}
	b, _ := io.ReadAll(f) // a bytes.Reader underneath: no error
	return h.Filename + "=" + string(b)
}

func newClient(t *testing.T, f *fake) *client.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL + "/prefix/", APIKey: "key-1", UserAgent: "test/1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// golden returns a JSON answer of internal/httpapi's golden tests: what the server sends.
func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "httpapi", "testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTypesCoverServerAnswers decodes every answer shape of httpapi's golden files with
// unknown fields disallowed: every field the server sends has its field here, by its
// exact name.
func TestTypesCoverServerAnswers(t *testing.T) {
	for name, v := range map[string]any{
		"create": &client.Session{}, "get_live": &client.Session{}, "get_ended": &client.Session{},
		"update": &client.Session{}, "list": &[]client.Session{}, "debug": &client.LiveURLs{},
		"context": &client.Context{}, "extension": &client.Extension{},
	} {
		d := json.NewDecoder(strings.NewReader(golden(t, name)))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			t.Errorf("%s.golden.json: %v", name, err)
		}
	}
}

func TestSessionCalls(t *testing.T) {
	f := &fake{t: t, answers: map[string]answer{
		"POST /prefix/v1/sessions":              {201, golden(t, "create")},
		"GET /prefix/v1/sessions":               {200, golden(t, "list")},
		"GET /prefix/v1/sessions/s 1":           {200, golden(t, "get_live")},
		"POST /prefix/v1/sessions/s1":           {200, golden(t, "update")},
		"GET /prefix/v1/sessions/s1/debug":      {200, golden(t, "debug")},
		"GET /prefix/v1/sessions/s1/logs":       {200, `[{"method":"Page.navigate","pageId":0,"sessionId":"s1","request":{"params":{"url":"x"},"rawBody":"","timestamp":5},"response":{"result":{"error":{}},"rawBody":"","timestamp":9}}]`},
		"GET /prefix/v1/sessions/s1/recording":  {200, `[{"data":{},"sessionId":"s1","timestamp":7,"type":2}]`},
		"POST /prefix/v1/sessions/s1/uploads":   {200, `{"message":"File uploaded successfully"}`},
		"GET /prefix/v1/sessions/s1/downloads":  {200, "PK\x05\x06zip"},
		"GET /prefix/v1/sessions/gone/debug":    {410, `{"statusCode":410,"code":410,"error":"Gone","message":"Session has ended"}`},
		"POST /prefix/v1/sessions/ended":        {409, `{"statusCode":409,"error":"Conflict","message":"already ended"}`},
		"GET /prefix/v1/sessions/s1/notfound/x": {404, ``},
	}}
	c := newClient(t, f)
	ctx := t.Context()

	s, err := c.CreateSession(ctx, json.RawMessage(`{"keepAlive": true}`))
	if err != nil || s.Status != "RUNNING" || s.ConnectURL == "" || s.SigningKey == "" || string(s.UserMetadata) == "" {
		t.Fatalf("CreateSession = %+v, %v", s, err)
	}
	ss, err := c.Sessions(ctx, client.SessionFilter{Status: "RUNNING", Q: "user_metadata['a']:'b'"})
	if err != nil || len(ss) != 2 || ss[1].EndedAt == "" {
		t.Fatalf("Sessions = %+v, %v", ss, err)
	}
	if s, err := c.Session(ctx, "s 1"); err != nil || s.ID != "{sessionId}" {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	if s, err := c.ReleaseSession(ctx, "s1"); err != nil || s.Status != "COMPLETED" {
		t.Fatalf("ReleaseSession = %+v, %v", s, err)
	}
	lv, err := c.SessionDebug(ctx, "s1", client.DebugOptions{ExpiresIn: 60, ReadOnly: true})
	if err != nil || len(lv.Pages) != 2 || lv.Pages[0].Title != "Marker" || lv.WSURL == "" {
		t.Fatalf("SessionDebug = %+v, %v", lv, err)
	}
	logs, err := c.SessionLogs(ctx, "s1")
	if err != nil || len(logs) != 1 || logs[0].Request.Timestamp != 5 || logs[0].Response.Result["error"] == nil {
		t.Fatalf("SessionLogs = %+v, %v", logs, err)
	}
	if ev, err := c.SessionRecording(ctx, "s1"); err != nil || len(ev) != 1 || ev[0].Type != 2 {
		t.Fatalf("SessionRecording = %+v, %v", ev, err)
	}
	if u, err := c.UploadSessionFile(ctx, "s1", "a.txt", strings.NewReader("hello")); err != nil || u.Message != "File uploaded successfully" {
		t.Fatalf("UploadSessionFile = %+v, %v", u, err)
	}
	zip, size, err := c.SessionDownloads(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zip)
	zip.Close()
	if err != nil || string(b) != "PK\x05\x06zip" || size != int64(len(b)) {
		t.Fatalf("SessionDownloads = %q (size %d), %v", b, size, err)
	}

	want := []seen{
		{"POST", "/prefix/v1/sessions", "", `{"keepAlive":true}`, "application/json", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions", "q=user_metadata%5B%27a%27%5D%3A%27b%27&status=RUNNING", "", "", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions/s 1", "", "", "", "key-1", "test/1"},
		{"POST", "/prefix/v1/sessions/s1", "", `{"status":"REQUEST_RELEASE"}`, "application/json", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions/s1/debug", "expiresIn=60&readOnly=true", "", "", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions/s1/logs", "", "", "", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions/s1/recording", "", "", "", "key-1", "test/1"},
		{"POST", "/prefix/v1/sessions/s1/uploads", "", "a.txt=hello", "", "key-1", "test/1"},
		{"GET", "/prefix/v1/sessions/s1/downloads", "", "", "", "key-1", "test/1"},
	}
	for i := range f.got {
		if strings.HasPrefix(f.got[i].ContentType, "multipart/form-data; boundary=") {
			f.got[i].ContentType = ""
		}
	}
	if diff := cmp.Diff(want, f.got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// Error answers.
	_, err = c.SessionDebug(ctx, "gone", client.DebugOptions{})
	if diff := cmp.Diff(&client.Error{Status: 410, Reason: "Gone", Message: "Session has ended"}, asError(t, err)); diff != "" {
		t.Errorf("410 (-want +got):\n%s", diff)
	}
	if err.Error() != "Session has ended (HTTP 410)" {
		t.Errorf("Error() = %q", err.Error())
	}
	_, err = c.ReleaseSession(ctx, "ended")
	if diff := cmp.Diff(&client.Error{Status: 409, Reason: "Conflict", Message: "already ended"}, asError(t, err)); diff != "" {
		t.Errorf("409 (-want +got):\n%s", diff)
	}
	_, _, err = c.SessionDownloads(ctx, "missing")
	if e := asError(t, err); e.Status != 404 || e.Message != "no such route" {
		t.Errorf("404: %+v", e)
	}
}

func asError(t *testing.T, err error) *client.Error {
	t.Helper()
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

func TestResourceCalls(t *testing.T) {
	keys := `{"id":"c1","cipherAlgorithm":"AES-256-CBC","initializationVectorSize":16,"publicKey":"pk","uploadUrl":"u"}`
	project := `{"id":"p1","name":"Default","ownerId":"o","defaultTimeout":300,"concurrency":3,"createdAt":"t","updatedAt":"t"}`
	f := &fake{t: t, answers: map[string]answer{
		"POST /prefix/v1/contexts":         {201, keys},
		"GET /prefix/v1/contexts/c1":       {200, golden(t, "context")},
		"PUT /prefix/v1/contexts/c1":       {200, keys},
		"DELETE /prefix/v1/contexts/c1":    {204, ""},
		"POST /prefix/v1/extensions":       {200, golden(t, "extension")},
		"GET /prefix/v1/extensions/e1":     {200, golden(t, "extension")},
		"DELETE /prefix/v1/extensions/e1":  {204, ""},
		"GET /prefix/v1/projects":          {200, "[" + project + "]"},
		"GET /prefix/v1/projects/p1":       {200, project},
		"GET /prefix/v1/projects/p1/usage": {200, `{"browserMinutes":12,"proxyBytes":34}`},
	}}
	c := newClient(t, f)
	ctx := t.Context()
	wantKeys := &client.ContextKeys{ID: "c1", CipherAlgorithm: "AES-256-CBC", InitializationVectorSize: 16, PublicKey: "pk", UploadURL: "u"}
	if k, err := c.CreateContext(ctx, "shop"); err != nil || !cmp.Equal(k, wantKeys) {
		t.Errorf("CreateContext = %+v, %v", k, err)
	}
	if k, err := c.CreateContext(ctx, ""); err != nil || !cmp.Equal(k, wantKeys) {
		t.Errorf("CreateContext without a name = %+v, %v", k, err)
	}
	if x, err := c.Context(ctx, "c1"); err != nil || x.Name != "Shop" {
		t.Errorf("Context = %+v, %v", x, err)
	}
	if k, err := c.UpdateContext(ctx, "c1"); err != nil || !cmp.Equal(k, wantKeys) {
		t.Errorf("UpdateContext = %+v, %v", k, err)
	}
	if err := c.DeleteContext(ctx, "c1"); err != nil {
		t.Errorf("DeleteContext: %v", err)
	}
	if e, err := c.UploadExtension(ctx, "ext.zip", strings.NewReader("PK")); err != nil || e.FileName != "stagehand-extension.zip" {
		t.Errorf("UploadExtension = %+v, %v", e, err)
	}
	if e, err := c.Extension(ctx, "e1"); err != nil || e.ProjectID == "" {
		t.Errorf("Extension = %+v, %v", e, err)
	}
	if err := c.DeleteExtension(ctx, "e1"); err != nil {
		t.Errorf("DeleteExtension: %v", err)
	}
	wantProject := client.Project{ID: "p1", Name: "Default", OwnerID: "o", DefaultTimeout: 300, Concurrency: 3, CreatedAt: "t", UpdatedAt: "t"}
	if ps, err := c.Projects(ctx); err != nil || !cmp.Equal(ps, []client.Project{wantProject}) {
		t.Errorf("Projects = %+v, %v", ps, err)
	}
	if p, err := c.Project(ctx, "p1"); err != nil || !cmp.Equal(*p, wantProject) {
		t.Errorf("Project = %+v, %v", p, err)
	}
	if u, err := c.ProjectUsage(ctx, "p1"); err != nil || *u != (client.ProjectUsage{BrowserMinutes: 12, ProxyBytes: 34}) {
		t.Errorf("ProjectUsage = %+v, %v", u, err)
	}
	var bodies []string
	for _, g := range f.got {
		bodies = append(bodies, g.Method+" "+g.Path+" "+g.Body)
	}
	want := []string{
		`POST /prefix/v1/contexts {"name":"shop"}`, `POST /prefix/v1/contexts {}`, "GET /prefix/v1/contexts/c1 ",
		"PUT /prefix/v1/contexts/c1 ", "DELETE /prefix/v1/contexts/c1 ", "POST /prefix/v1/extensions ext.zip=PK",
		"GET /prefix/v1/extensions/e1 ", "DELETE /prefix/v1/extensions/e1 ", "GET /prefix/v1/projects ",
		"GET /prefix/v1/projects/p1 ", "GET /prefix/v1/projects/p1/usage ",
	}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestKeepBody checks that a KeepBody copy holds the answer a call decoded, as sent, and
// nothing after a call that failed.
func TestKeepBody(t *testing.T) {
	sent := "{ \"id\": \"p1\",  \"extra\": [1, 2] }"
	f := &fake{t: t, answers: map[string]answer{
		"GET /prefix/v1/projects/p1": {200, sent},
		"GET /prefix/v1/projects/p2": {200, `{"id": 5}`},
	}}
	var body []byte
	c := newClient(t, f).KeepBody(&body)
	if _, err := c.Project(t.Context(), "p1"); err != nil || string(body) != sent {
		t.Fatalf("Project: %v; kept %q, want %q", err, body, sent)
	}
	if _, err := c.Project(t.Context(), "nope"); err == nil || body != nil {
		t.Fatalf("failed Project: %v; kept %q, want nothing", err, body)
	}
	// An answer the struct cannot hold is kept, and the error says so.
	_, err := c.Project(t.Context(), "p2")
	if err == nil || !strings.Contains(err.Error(), "does not decode") || string(body) != `{"id": 5}` {
		t.Fatalf("undecodable Project: %v; kept %q", err, body)
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host:bad port"} {
		if _, err := client.New(client.Config{BaseURL: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	if _, err := client.New(client.Config{BaseURL: "https://api.browserbase.com"}); err != nil {
		t.Errorf("New: %v", err)
	}
}

// TestNetworkError checks the error of a request that got no answer: the method and path,
// then the cause (the CLI prints it as is).
func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Sessions(t.Context(), client.SessionFilter{})
	if err == nil || !strings.HasPrefix(err.Error(), "GET /v1/sessions: dial tcp") {
		t.Errorf("Sessions with no server: %v", err)
	}
	if _, ok := errors.AsType[*client.Error](err); ok {
		t.Errorf("a network error is a *client.Error: %v", err)
	}
}

// TestUploadEarlyAnswer checks that an upload the server refuses before reading it
// returns (the reader is not read on) rather than hanging.
func TestUploadEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, `{"statusCode":413,"error":"Payload Too Large","message":"too big"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = c.UploadExtension(ctx, "big.zip", io.LimitReader(zeros{}, 1<<30))
	if e, ok := errors.AsType[*client.Error](err); ok && e.Status != 413 {
		t.Errorf("UploadExtension: %v", err)
	} else if !ok && err == nil {
		t.Error("UploadExtension of 1 GiB to a refusing server succeeded")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
