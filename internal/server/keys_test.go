package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// runAdmin runs `browserd admin args… --data-dir dir --json` in-process and decodes its
// output into out.
func runAdmin(t *testing.T, dir string, out any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(append([]string{"admin"}, args...), "--data-dir", dir, "--json")
	if code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("browserd %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("browserd %s printed %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
}

// dbFiles returns the contents of the SQLite database and its WAL and journal files.
func dbFiles(t *testing.T, dir string) []byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "browserd.db*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no database files in %s: %v", dir, err)
	}
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

var (
	printedKey     = regexp.MustCompile(`BROWSERBASE_API_KEY=(\S+)`)
	printedProject = regexp.MustCompile(`BROWSERBASE_PROJECT_ID=(\S+)`)
)

// TestKeys checks the default project's generated key (printed once, stored hashed) and
// keys of projects made with `browserd admin`, which see only their own project.
func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noEnv := map[string]string{}

	// First start without BROWSERD_API_KEY: a key is made and printed.
	srv := startServer(t, dir, noEnv)
	out := srv.stdout.String()
	m, pm := printedKey.FindStringSubmatch(out), printedProject.FindStringSubmatch(out)
	if m == nil || pm == nil {
		t.Fatalf("first start printed no API key and project id:\n%s", out)
	}
	key, defaultProject := m[1], pm[1]
	var p struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	callJSON(t, srv.URL, "GET", "/v1/projects/"+defaultProject, key, nil, http.StatusOK, &p)
	if p.ID != defaultProject {
		t.Errorf("GET /v1/projects/%s with the printed key = %+v", defaultProject, p)
	}
	srv.stop(t)
	files := dbFiles(t, dir)
	if bytes.Contains(files, []byte(key)) {
		t.Errorf("the database holds the raw API key")
	}
	if !bytes.Contains(files, bb.HashAPIKey(key)) {
		t.Errorf("the database does not hold the key's hash (is this the right file?)")
	}

	// Second start: no new key, the first one still works.
	srv = startServer(t, dir, noEnv)
	if out := srv.stdout.String(); strings.Contains(out, "BROWSERBASE_API_KEY") {
		t.Errorf("second start printed a key again:\n%s", out)
	}
	callJSON(t, srv.URL, "GET", "/v1/projects/"+defaultProject, key, nil, http.StatusOK, nil)

	// A project and key made with the admin commands while the server runs.
	var other struct {
		ID          string `json:"id"`
		Concurrency int    `json:"concurrency"`
	}
	runAdmin(t, dir, &other, "projects", "create", "--name", "other", "--concurrency", "2")
	var created struct {
		Key       string `json:"key"`
		ProjectID string `json:"projectId"`
	}
	runAdmin(t, dir, &created, "keys", "create", "--project", other.ID, "--name", "ci")
	otherKey := created.Key
	if created.ProjectID != other.ID || otherKey == "" || otherKey == key {
		t.Fatalf("keys create = %+v; want a new key for project %s", created, other.ID)
	}

	var projects []struct {
		ID          string `json:"id"`
		Concurrency int    `json:"concurrency"`
	}
	callJSON(t, srv.URL, "GET", "/v1/projects", otherKey, nil, http.StatusOK, &projects)
	if len(projects) != 1 || projects[0].ID != other.ID || projects[0].Concurrency != 2 {
		t.Errorf("GET /v1/projects with the admin key = %+v; want only project %s (concurrency 2)", projects, other.ID)
	}
	if code, body := call(t, srv.URL, "GET", "/v1/projects/"+defaultProject, otherKey, nil); code != http.StatusNotFound {
		t.Errorf("another project with the admin key = %d %s; want 404", code, body)
	}

	mine := srv.create(t, key, nil)
	theirs := srv.create(t, otherKey, map[string]any{"projectId": other.ID})
	if mine.ProjectID != defaultProject || theirs.ProjectID != other.ID {
		t.Errorf("sessions made in projects %s and %s; want %s and %s", mine.ProjectID, theirs.ProjectID, defaultProject, other.ID)
	}
	for _, tt := range []struct {
		name, key, id string
	}{
		{"admin key, default project's session", otherKey, mine.ID},
		{"default key, admin project's session", key, theirs.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := call(t, srv.URL, "GET", "/v1/sessions/"+tt.id, tt.key, nil); code != http.StatusNotFound {
				t.Errorf("GET = %d %s; want 404", code, body)
			}
			if code, body := call(t, srv.URL, "POST", "/v1/sessions/"+tt.id, tt.key, map[string]any{"status": "REQUEST_RELEASE"}); code != http.StatusNotFound {
				t.Errorf("release = %d %s; want 404", code, body)
			}
			var list []apiSession
			callJSON(t, srv.URL, "GET", "/v1/sessions", tt.key, nil, http.StatusOK, &list)
			for _, s := range list {
				if s.ID == tt.id {
					t.Errorf("GET /v1/sessions lists the other project's session")
				}
			}
			// The legacy connect form checks the project too.
			u, err := url.Parse(mine.ConnectURL)
			if err != nil {
				t.Fatal(err)
			}
			u.Path, u.RawQuery = "/", url.Values{"apiKey": {tt.key}, "sessionId": {tt.id}}.Encode()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if c, resp, err := dialCDP(ctx, u.String()); err == nil {
				c.c.CloseNow()
				t.Errorf("legacy connect to the other project's session succeeded")
			} else if resp == nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("legacy connect to the other project's session: %s; want HTTP 404", redactErr(err))
			}
		})
	}
	if code, body := call(t, srv.URL, "POST", "/v1/sessions", otherKey, map[string]any{"projectId": defaultProject}); code != http.StatusUnauthorized {
		t.Errorf("create in another project = %d %s; want 401", code, body)
	}
	srv.release(t, key, mine.ID)
	srv.release(t, otherKey, theirs.ID)
	srv.stop(t)
	if bytes.Contains(dbFiles(t, dir), []byte(otherKey)) {
		t.Errorf("the database holds the raw admin-made API key")
	}
}

// badAPIKey is a key no project has: testAPIKey with its last character changed.
const badAPIKey = "bb_e2e_test_key_012345678X"

// otherProject makes a second project and a key for it with the admin commands, while
// the server on dir runs, and returns the project's id and the key.
func otherProject(t *testing.T, dir string) (id, key string) {
	t.Helper()
	var p struct {
		ID string `json:"id"`
	}
	runAdmin(t, dir, &p, "projects", "create", "--name", "project-b")
	var k struct {
		Key string `json:"key"`
	}
	runAdmin(t, dir, &k, "keys", "create", "--project", p.ID, "--name", "b")
	if p.ID == "" || k.Key == "" {
		t.Fatalf("projects/keys create = %q, %q; want a project and a key", p.ID, k.Key)
	}
	return p.ID, k.Key
}

// apiCall is one request of checkOthersRefused.
type apiCall struct {
	method, path string
	body         any // JSON, nil: none
}

// checkOthersRefused sends each call, about one of the default project's resources,
// without a key and with a bad key (401) and with another project's key (404, not 403:
// nothing says the resource exists), each in the API's error shape and without any of
// leaks (the resource's data) in the body.
func checkOthersRefused(t *testing.T, base, otherKey string, calls []apiCall, leaks ...string) {
	t.Helper()
	for _, c := range calls {
		for _, k := range []struct {
			name, key string
			want      int
		}{
			{"no key", "", http.StatusUnauthorized},
			{"a bad key", badAPIKey, http.StatusUnauthorized},
			{"another project's key", otherKey, http.StatusNotFound},
		} {
			code, body := call(t, base, c.method, c.path, k.key, c.body)
			if code != k.want || !bytes.Contains(body, []byte(`"statusCode":`+strconv.Itoa(k.want))) {
				t.Errorf("%s %s with %s = %d %s; want %d in the error shape", c.method, c.path, k.name, code, body, k.want)
			}
			for _, l := range leaks {
				if l != "" && bytes.Contains(body, []byte(l)) {
					t.Errorf("%s %s with %s = %d %s: shows %q", c.method, c.path, k.name, code, body, l)
				}
			}
		}
	}
}
