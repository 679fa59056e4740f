package cli

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeAPI answers like a browserd server, with the key "k"; cmd/browserd's TestCLI runs
// the commands against the real one.
func fakeAPI(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	answer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-BB-API-Key") != "k" {
				status, body = 401, `{"statusCode":401,"error":"Unauthorized","message":"Invalid API key"}`
			} else if ua := r.Header.Get("User-Agent"); ua != "browserd-cli/v9" {
				status, body = 400, `{"message":"User-Agent `+ua+`"}`
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	// Key order and an unknown field, which --json must keep.
	session := `{"status":"RUNNING","id":"s1","createdAt":"2026-01-02T03:04:05.000Z","keepAlive":true,"region":"us-west-2","future":{"x":1},"userMetadata":{"a":"b"},"memoryUsage":1536}`
	mux.HandleFunc("GET /v1/sessions/s1", answer(200, session))
	mux.HandleFunc("GET /v1/sessions/gone/debug", answer(410, `{"statusCode":410,"code":410,"error":"Gone","message":"Session has ended"}`))
	mux.HandleFunc("POST /v1/sessions", answer(429, `{"statusCode":429,"error":"Too Many Requests","message":"limit reached"}`))
	mux.HandleFunc("GET /v1/projects", answer(200, `[{"id":"p1","name":"Default","concurrency":3,"defaultTimeout":300,"createdAt":"t"}]`))
	mux.HandleFunc("GET /v1/projects/p1/usage", answer(200, `{"browserMinutes":7,"proxyBytes":9}`))
	mux.HandleFunc("GET /v1/projects/bad", answer(200, `{"id":5}`))
	mux.HandleFunc("DELETE /v1/contexts/c1", answer(204, ""))
	mux.HandleFunc("GET /v1/sessions/s1/downloads", answer(200, "PK-zip"))
	mux.HandleFunc("POST /v1/sessions/s1/uploads", func(w http.ResponseWriter, r *http.Request) {
		f, h, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		b, _ := io.ReadAll(f) // the test checks the content below
		if h.Filename != "report.txt" || string(b) != "numbers" {
			http.Error(w, "got "+h.Filename+" "+string(b), 400)
			return
		}
		io.WriteString(w, `{"message":"File uploaded successfully"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func runCLI(t *testing.T, base, key string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{"BROWSERBASE_BASE_URL": base, "BROWSERBASE_API_KEY": key}
	var out, errOut bytes.Buffer
	code := Run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut, "v9")
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	srv := fakeAPI(t)
	dir := t.TempDir()
	upload := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(upload, []byte("numbers"), 0o644); err != nil {
		t.Fatal(err)
	}
	zip := filepath.Join(dir, "d.zip")
	tests := []struct {
		name     string
		key      string // "" means "k"
		args     []string
		wantCode int
		wantOut  string
		wantErr  string // a part of stderr
	}{
		{name: "json is the server's answer", args: []string{"sessions", "get", "s1", "--json"}, wantOut: `{
  "status": "RUNNING",
  "id": "s1",
  "createdAt": "2026-01-02T03:04:05.000Z",
  "keepAlive": true,
  "region": "us-west-2",
  "future": {
    "x": 1
  },
  "userMetadata": {
    "a": "b"
  },
  "memoryUsage": 1536
}
`},
		{name: "table", args: []string{"sessions", "get", "s1"}, wantOut: `id          s1
status      RUNNING
created     2026-01-02T03:04:05.000Z
keep alive  true
region      us-west-2
metadata    {"a":"b"}
memory      1.5 KiB
`},
		{name: "project usage of the key's project", args: []string{"projects", "usage"}, wantOut: "project          p1\nbrowser minutes  7\nproxy bytes      9\n"},
		{name: "json of an answer that does not decode", args: []string{"projects", "get", "bad", "--json"}, wantOut: "{\n  \"id\": 5\n}\n"},
		{name: "table of an answer that does not decode", args: []string{"projects", "get", "bad"}, wantCode: ExitError, wantErr: "the server's answer does not decode"},
		{name: "delete", args: []string{"contexts", "delete", "c1"}, wantOut: "deleted c1\n"},
		{name: "delete json", args: []string{"contexts", "delete", "c1", "--json"}, wantOut: "{\"deleted\": \"c1\"}\n"},
		{name: "upload", args: []string{"sessions", "upload", "s1", upload}, wantOut: "File uploaded successfully: /tmp/.uploads/report.txt\n"},
		{name: "downloads", args: []string{"sessions", "downloads", "s1", "-o", zip}, wantOut: "saved 6 bytes (6 B) to " + zip + "\n"},
		{name: "downloads to stdout", args: []string{"sessions", "downloads", "s1", "-o", "-"}, wantOut: "PK-zip"},
		{name: "gone", args: []string{"sessions", "debug", "gone"}, wantCode: ExitNotFound, wantErr: "browserd: Session has ended (HTTP 410)\n"},
		{name: "limit", args: []string{"sessions", "create", "--json"}, wantCode: ExitLimit, wantErr: "browserd: limit reached (HTTP 429)\n"},
		{name: "wrong key", key: "x", args: []string{"sessions", "get", "s1"}, wantCode: ExitAuth, wantErr: "Invalid API key (HTTP 401)"},
		{name: "persist without context", args: []string{"sessions", "create", "--persist"}, wantCode: ExitUsage, wantErr: "--persist needs --context"},
		{name: "help", args: []string{"sessions", "help"}, wantCode: ExitUsage, wantErr: "Client commands talk to"},
		{name: "flag help", args: []string{"sessions", "get", "-h"}, wantCode: ExitOK, wantErr: "-api-key"},
		{name: "bad url", key: "k", args: []string{"sessions", "list", "--url", "localhost:1"}, wantCode: ExitUsage,
			wantErr: `browserd: --url must be an absolute http(s) URL, got "localhost:1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = "k"
			}
			code, out, errOut := runCLI(t, srv.URL, key, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("browserd %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					strings.Join(tt.args, " "), code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
	if b, err := os.ReadFile(zip); err != nil || string(b) != "PK-zip" {
		t.Errorf("downloaded %q, %v", b, err)
	}
}
