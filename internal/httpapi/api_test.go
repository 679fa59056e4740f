package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

const jsonCT = "application/json"

var jsonHeader = map[string]string{"Content-Type": jsonCT}

func TestGoldenCreate(t *testing.T) {
	e := newEnv(t, 5, Config{})
	w := e.do(t, request{method: "POST", path: "/v1/sessions", key: e.key, header: jsonHeader,
		body: "{\n  \"keepAlive\": true,\n  \"timeout\": 600,\n  \"region\": \"eu-central-1\",\n  \"userMetadata\": {\"env\": \"staging\", \"order\": {\"id\": \"7\"}},\n  \"fingerprint\": {}\n}"})
	if w.Code != http.StatusCreated {
		t.Fatalf("create = %d %s; want 201", w.Code, w.Body)
	}
	v := decodeAny(t, w).(map[string]any)
	id := v["id"].(string)
	if got, want := v["signingKey"], e.mgr.SigningKey(id); got != want {
		t.Errorf("signingKey = %q; want Manager.SigningKey = %q", got, want)
	}
	checkGolden(t, "create", normalize(t, v, map[string]string{
		id: "{sessionId}", e.mgr.SigningKey(id): "{signingKey}", e.project.ID: "{projectId}",
	}))
}

func TestGoldenGet(t *testing.T) {
	e := newEnv(t, 5, Config{})
	id := e.create(t, `{"userMetadata":{"env":"staging"}}`)
	subs := map[string]string{id: "{sessionId}", e.mgr.SigningKey(id): "{signingKey}", e.project.ID: "{projectId}"}

	live := e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + id, key: e.key}, http.StatusOK)
	checkGolden(t, "get_live", normalize(t, live, subs))

	released := normalize(t, e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + id, key: e.key, header: jsonHeader,
		body: `{"status":"REQUEST_RELEASE","projectId":"` + e.project.ID + `"}`}, http.StatusOK), subs)
	checkGolden(t, "update", released)

	ended := e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + id, key: e.key}, http.StatusOK)
	checkGolden(t, "get_ended", normalize(t, ended, subs))

	// Releasing again is idempotent (spec §5.4).
	again := e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + id, key: e.key,
		body: `{"status":"REQUEST_RELEASE"}`}, http.StatusOK)
	if diff := cmp.Diff(normalize(t, again, subs), released); diff != "" {
		t.Errorf("second release mismatch (-got +want):\n%s", diff)
	}
}

func TestGoldenList(t *testing.T) {
	e := newEnv(t, 5, Config{})
	a := e.create(t, `{"userMetadata":{"name":"a","order":{"status":"shipped"}}}`)
	time.Sleep(2 * time.Millisecond) // createdAt has millisecond precision; the list is newest first
	b := e.create(t, `{"userMetadata":{"name":"b"},"keepAlive":true}`)
	e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + a, key: e.key, body: `{"status":"REQUEST_RELEASE"}`}, http.StatusOK)
	e.createFor(t, e.otherKey) // another project's session must not be listed
	subs := map[string]string{a: "{sessionA}", b: "{sessionB}", e.project.ID: "{projectId}"}

	tests := []struct {
		name, query string
		golden      string   // golden file, or "" to compare ids only
		wantIDs     []string // in order
	}{
		{name: "all", golden: "list"},
		{name: "status", query: "?status=RUNNING", wantIDs: []string{b}},
		{name: "ended", query: "?status=COMPLETED", wantIDs: []string{a}},
		{name: "metadata", query: "?q=user_metadata%5B%27order%27%5D%5B%27status%27%5D%3A%27shipped%27", wantIDs: []string{a}},
		{name: "metadata and status", query: "?status=RUNNING&q=user_metadata['name']:'a'", wantIDs: []string{}},
		{name: "empty filters", query: "?status=&q=", golden: "list"},
		{name: "no match is []", query: "?status=TIMED_OUT", wantIDs: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, request{method: "GET", path: "/v1/sessions" + tt.query, key: e.key})
			if w.Code != http.StatusOK {
				t.Fatalf("list = %d %s", w.Code, w.Body)
			}
			if strings.TrimSpace(w.Body.String()) == "null" {
				t.Fatal("list = null; want []")
			}
			list := decodeAny(t, w).([]any)
			if tt.golden != "" {
				checkGolden(t, tt.golden, normalize(t, list, subs))
				return
			}
			ids := []string{}
			for _, s := range list {
				ids = append(ids, s.(map[string]any)["id"].(string))
			}
			if diff := cmp.Diff(ids, tt.wantIDs); diff != "" {
				t.Errorf("ids mismatch (-got +want):\n%s", diff)
			}
		})
	}
	// The other project sees only its own session.
	w := e.do(t, request{method: "GET", path: "/v1/sessions", key: e.otherKey})
	if other := decodeAny(t, w).([]any); len(other) != 1 || other[0].(map[string]any)["projectId"] != e.other.ID {
		t.Errorf("other project lists %v; want its one session", other)
	}
}

func TestGoldenError(t *testing.T) {
	e := newEnv(t, 5, Config{})
	w := e.do(t, request{method: "GET", path: "/v1/sessions/" + bb.NewID(), key: e.key})
	if w.Code != http.StatusNotFound {
		t.Fatalf("get unknown = %d; want 404", w.Code)
	}
	checkGolden(t, "error", decodeAny(t, w))
}

func TestProjects(t *testing.T) {
	e := newEnv(t, 3, Config{})
	subs := map[string]string{e.project.ID: "{projectId}"}
	list := e.do(t, request{method: "GET", path: "/v1/projects", key: e.key, header: jsonHeader})
	if list.Code != http.StatusOK {
		t.Fatalf("list projects = %d %s", list.Code, list.Body)
	}
	got := decodeAny(t, list).([]any)
	if len(got) != 1 || got[0].(map[string]any)["id"] != e.project.ID {
		t.Fatalf("projects = %v; want only the key's project %s", got, e.project.ID)
	}
	p := e.mustDo(t, request{method: "GET", path: "/v1/projects/" + e.project.ID, key: e.key}, http.StatusOK)
	want := map[string]any{
		"id": "{projectId}", "name": e.project.Name, "ownerId": e.project.OwnerID,
		"defaultTimeout": float64(e.project.DefaultTimeout), "concurrency": float64(3),
		"createdAt": "{time}", "updatedAt": "{time}",
	}
	if diff := cmp.Diff(normalize(t, p, subs), any(want)); diff != "" {
		t.Errorf("project mismatch (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(normalize(t, got[0], subs), any(want)); diff != "" {
		t.Errorf("listed project mismatch (-got +want):\n%s", diff)
	}
	e.create(t, `{}`)
	u := e.mustDo(t, request{method: "GET", path: "/v1/projects/" + e.project.ID + "/usage", key: e.key}, http.StatusOK)
	if _, ok := u["browserMinutes"].(float64); !ok {
		t.Errorf("usage = %v; want browserMinutes", u)
	}
	if u["proxyBytes"] != float64(0) {
		t.Errorf("usage = %v; want proxyBytes 0", u)
	}
	if len(u) != 2 {
		t.Errorf("usage = %v; want exactly browserMinutes and proxyBytes", u)
	}
}

// TestStatusCodes covers every error path of the API and the acceptance of empty
// bodies with a JSON content type.
func TestStatusCodes(t *testing.T) {
	e := newEnv(t, 5, Config{})
	live := e.create(t, `{}`)
	otherSession := e.createFor(t, e.otherKey)
	big := `{"userMetadata":{"k":"` + strings.Repeat("x", 512-len(`{"k":""}`)) + `"}}`
	huge := `{"x":"` + strings.Repeat("y", DefaultMaxBodyBytes) + `"}`

	tests := []struct {
		name string
		req  request
		want int
		// wantMsg is the exact message, or a prefix when it ends with "…".
		wantMsg     string
		wantNoRetry bool
		wantAllow   string
	}{
		// 200/201: empty bodies with a JSON content type (spec §1.3).
		{name: "create empty JSON body", req: request{method: "POST", path: "/v1/sessions", header: jsonHeader}, want: 201},
		{name: "create no content type", req: request{method: "POST", path: "/v1/sessions", body: `{}`}, want: 201},
		{name: "create other content type", req: request{method: "POST", path: "/v1/sessions", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}, want: 201},
		{name: "list empty JSON body", req: request{method: "GET", path: "/v1/sessions", header: jsonHeader}, want: 200},
		{name: "get empty JSON body", req: request{method: "GET", path: "/v1/sessions/" + live, header: jsonHeader}, want: 200},
		{name: "head", req: request{method: "HEAD", path: "/v1/sessions/" + live}, want: 200},
		{name: "lower-case key header", req: request{method: "GET", path: "/v1/projects", header: map[string]string{"x-bb-api-key": "{key}"}}, want: 200},

		// 400
		{name: "timeout 59", req: request{method: "POST", path: "/v1/sessions", body: `{"timeout":59}`}, want: 400, wantMsg: "body/timeout must be >= 60"},
		{name: "timeout 21601", req: request{method: "POST", path: "/v1/sessions", body: `{"timeout":21601}`}, want: 400, wantMsg: "body/timeout must be <= 21600"},
		{name: "timeout string", req: request{method: "POST", path: "/v1/sessions", body: `{"timeout":"x"}`}, want: 400, wantMsg: "body/timeout must be an integer"},
		{name: "bad region", req: request{method: "POST", path: "/v1/sessions", body: `{"region":"moon"}`}, want: 400, wantMsg: "body/region must be one of…"},
		{name: "bad os", req: request{method: "POST", path: "/v1/sessions", body: `{"browserSettings":{"os":"beos"}}`}, want: 400, wantMsg: "body/browserSettings/os must be one of…"},
		{name: "userMetadata 512 chars", req: request{method: "POST", path: "/v1/sessions", body: big}, want: 400, wantMsg: "body/userMetadata must be shorter than 512 characters…"},
		{name: "malformed JSON", req: request{method: "POST", path: "/v1/sessions", body: `{"timeout":`, header: jsonHeader}, want: 400, wantMsg: "body is not valid JSON"},
		{name: "body not an object", req: request{method: "POST", path: "/v1/sessions", body: `[1]`}, want: 400, wantMsg: "body must be an object"},
		{name: "bad status filter", req: request{method: "GET", path: "/v1/sessions?status=running"}, want: 400, wantMsg: "status must be one of…"},
		{name: "malformed q", req: request{method: "GET", path: "/v1/sessions?q=user_metadata.env%3Dx"}, want: 400, wantMsg: "q is not a valid metadata query…"},
		{name: "update without status", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{}`}, want: 400, wantMsg: "body must have required property 'status'"},
		{name: "update empty body", req: request{method: "POST", path: "/v1/sessions/" + live, header: jsonHeader}, want: 400, wantMsg: "body must have required property 'status'"},
		{name: "update other status", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{"status":"COMPLETED"}`}, want: 400, wantMsg: "body/status must be equal to REQUEST_RELEASE"},
		{name: "update status not a string", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{"status":1}`}, want: 400, wantMsg: "body/status must be equal to REQUEST_RELEASE"},
		{name: "update projectId not a string", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{"status":"REQUEST_RELEASE","projectId":1}`}, want: 400, wantMsg: "body/projectId must be a string"},
		{name: "update malformed JSON", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{`}, want: 400, wantMsg: "body is not valid JSON"},
		{name: "update body not an object", req: request{method: "POST", path: "/v1/sessions/" + live, body: `"REQUEST_RELEASE"`}, want: 400, wantMsg: "body must be an object"},

		// 401
		{name: "no key list", req: request{method: "GET", path: "/v1/sessions", key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key create", req: request{method: "POST", path: "/v1/sessions", body: `{}`, key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key get", req: request{method: "GET", path: "/v1/sessions/" + live, key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key update", req: request{method: "POST", path: "/v1/sessions/" + live, key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key projects", req: request{method: "GET", path: "/v1/projects", key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key project", req: request{method: "GET", path: "/v1/projects/{project}", key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "no key usage", req: request{method: "GET", path: "/v1/projects/{project}/usage", key: "-"}, want: 401, wantMsg: "Unauthorized…"},
		{name: "wrong key", req: request{method: "GET", path: "/v1/sessions", key: "bb_wrong"}, want: 401, wantMsg: "Unauthorized: invalid API key"},
		{name: "key in another header", req: request{method: "GET", path: "/v1/sessions", key: "-", header: map[string]string{"Authorization": "Bearer {key}"}}, want: 401, wantMsg: "Unauthorized…"},
		{name: "create other projectId", req: request{method: "POST", path: "/v1/sessions", body: `{"projectId":"{otherProject}"}`}, want: 401, wantMsg: "Unauthorized Project ID", wantNoRetry: true},
		{name: "update other projectId", req: request{method: "POST", path: "/v1/sessions/" + live, body: `{"status":"REQUEST_RELEASE","projectId":"{otherProject}"}`}, want: 401, wantMsg: "Unauthorized Project ID", wantNoRetry: true},

		// 404
		{name: "unknown id", req: request{method: "GET", path: "/v1/sessions/" + bb.NewID()}, want: 404, wantMsg: "Session not found"},
		{name: "malformed id", req: request{method: "GET", path: "/v1/sessions/not-an-id"}, want: 404, wantMsg: "Session not found"},
		{name: "update unknown id", req: request{method: "POST", path: "/v1/sessions/" + bb.NewID(), body: `{"status":"REQUEST_RELEASE"}`}, want: 404, wantMsg: "Session not found"},
		{name: "other project's session", req: request{method: "GET", path: "/v1/sessions/" + otherSession}, want: 404, wantMsg: "Session not found"},
		{name: "release other project's session", req: request{method: "POST", path: "/v1/sessions/" + otherSession, body: `{"status":"REQUEST_RELEASE"}`}, want: 404, wantMsg: "Session not found"},
		{name: "other project", req: request{method: "GET", path: "/v1/projects/{otherProject}"}, want: 404, wantMsg: "Project not found"},
		{name: "other project's usage", req: request{method: "GET", path: "/v1/projects/{otherProject}/usage"}, want: 404, wantMsg: "Project not found"},
		{name: "unknown project", req: request{method: "GET", path: "/v1/projects/" + bb.NewID()}, want: 404, wantMsg: "Project not found"},
		{name: "unknown path", req: request{method: "GET", path: "/v1/nothing"}, want: 404, wantMsg: "Route GET /v1/nothing not found"},
		{name: "unknown sub-path", req: request{method: "GET", path: "/v1/sessions/" + live + "/nothing"}, want: 404, wantMsg: "Route GET…"},
		{name: "unknown version", req: request{method: "GET", path: "/v2/sessions"}, want: 404, wantMsg: "Route GET /v2/sessions not found"},

		// 405
		{name: "delete sessions", req: request{method: "DELETE", path: "/v1/sessions"}, want: 405, wantAllow: "GET, HEAD, POST", wantMsg: "Method DELETE is not allowed…"},
		{name: "put session", req: request{method: "PUT", path: "/v1/sessions/" + live, body: `{}`}, want: 405, wantAllow: "GET, HEAD, POST", wantMsg: "Method PUT…"},
		{name: "delete session empty JSON body", req: request{method: "DELETE", path: "/v1/sessions/" + live, header: jsonHeader}, want: 405, wantAllow: "GET, HEAD, POST", wantMsg: "Method DELETE…"},
		{name: "patch session", req: request{method: "PATCH", path: "/v1/sessions/" + live, body: `{"status":"REQUEST_RELEASE"}`}, want: 405, wantAllow: "GET, HEAD, POST", wantMsg: "Method PATCH…"},
		{name: "post projects", req: request{method: "POST", path: "/v1/projects"}, want: 405, wantAllow: "GET, HEAD", wantMsg: "Method POST…"},
		{name: "post usage", req: request{method: "POST", path: "/v1/projects/{project}/usage"}, want: 405, wantAllow: "GET, HEAD", wantMsg: "Method POST…"},

		// 413
		{name: "create body too large", req: request{method: "POST", path: "/v1/sessions", body: huge}, want: 413, wantMsg: "body must not be larger than 1048576 bytes"},
		{name: "update body too large", req: request{method: "POST", path: "/v1/sessions/" + live, body: huge}, want: 413, wantMsg: "body must not be larger than 1048576 bytes"},

		// 501 (spec §6.11)
		{name: "fetch without a fetcher", req: request{method: "POST", path: "/v1/fetch", body: `{}`}, want: 501, wantMsg: "POST /v1/fetch is not enabled on this browserd server"},
		{name: "search", req: request{method: "POST", path: "/v1/search", body: `{}`}, want: 501, wantMsg: "POST /v1/search…"},
		{name: "certificates off", req: request{method: "GET", path: "/v1/certificates"}, want: 503, wantNoRetry: true, wantMsg: "certificates are not configured on this browserd server"},
		{name: "certificate off", req: request{method: "DELETE", path: "/v1/certificates/c1", header: jsonHeader}, want: 503, wantNoRetry: true, wantMsg: "certificates are not configured on this browserd server"},
		{name: "secrets keypair", req: request{method: "GET", path: "/v1/secrets/keypair"}, want: 501, wantMsg: "GET /v1/secrets/keypair…"},
		{name: "secrets", req: request{method: "PATCH", path: "/v1/secrets/w1", body: `{}`}, want: 501, wantMsg: "PATCH /v1/secrets/w1…"},
		{name: "agent runs", req: request{method: "GET", path: "/v1/agents/runs/r1/messages"}, want: 501, wantMsg: "GET /v1/agents/runs/r1/messages…"},
		{name: "function secrets", req: request{method: "DELETE", path: "/v1/functions/f1/secrets/s1"}, want: 501, wantMsg: "DELETE /v1/functions/f1/secrets/s1…"},
		// Webhooks without a webhook service (Config.Webhooks), and the deliveries route.
		{name: "webhooks off", req: request{method: "PATCH", path: "/v1/webhooks/w1", body: `{}`}, want: 501, wantMsg: "webhooks are not configured on this browserd server"},
		{name: "webhook deliveries off", req: request{method: "GET", path: "/v1/webhooks/w1/deliveries"}, want: 501, wantMsg: "webhooks are not configured…"},
		{name: "webhook method", req: request{method: "PUT", path: "/v1/webhooks/w1", body: `{}`}, want: 405, wantAllow: "DELETE, GET, HEAD, PATCH", wantMsg: "Method PUT is not allowed on /v1/webhooks/w1 (allowed: DELETE, GET, HEAD, PATCH)"},
	}
	expand := strings.NewReplacer("{project}", e.project.ID, "{otherProject}", e.other.ID, "{key}", e.key)
	seen := make(map[string]bool)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.path, req.body = expand.Replace(req.path), expand.Replace(req.body)
			switch req.key {
			case "":
				req.key = e.key
			case "-":
				req.key = ""
			}
			h := make(map[string]string)
			for k, v := range req.header {
				h[k] = expand.Replace(v)
			}
			req.header = h
			w := e.do(t, req)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d %s; want %d", req.method, req.path, w.Code, w.Body, tt.want)
			}
			id := w.Header().Get("x-request-id")
			if seen[id] {
				t.Errorf("x-request-id %q repeated", id)
			}
			seen[id] = true
			if got := w.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q; want %q", got, tt.wantAllow)
			}
			// Every 4xx but 409 and 429, and every 501, says not to retry (respond.go).
			noRetry := tt.wantNoRetry || tt.want == 501 || (tt.want >= 400 && tt.want < 500 && tt.want != 409 && tt.want != 429)
			if got, want := w.Header().Get("x-should-retry"), map[bool]string{true: "false"}[noRetry]; got != want {
				t.Errorf("x-should-retry = %q; want %q", got, want)
			}
			if tt.want < 400 || req.method == "HEAD" {
				return
			}
			checkErrorBody(t, w.Body.Bytes(), tt.want, tt.wantMsg)
		})
	}
}

// checkErrorBody checks the error shape of spec §1.5. wantMsg is exact, or a prefix
// when it ends with "…".
func checkErrorBody(t *testing.T, body []byte, status int, wantMsg string) {
	t.Helper()
	var got wireError
	if err := jsonUnmarshalStrict(body, &got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	want := wireError{StatusCode: status, Code: status, Error: http.StatusText(status), Message: got.Message}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("error body mismatch (-got +want):\n%s", diff)
	}
	if prefix, ok := strings.CutSuffix(wantMsg, "…"); ok {
		if !strings.HasPrefix(got.Message, prefix) {
			t.Errorf("message = %q; want prefix %q", got.Message, prefix)
		}
	} else if got.Message != wantMsg {
		t.Errorf("message = %q; want %q", got.Message, wantMsg)
	}
}

// createFor creates a session with another key and returns its id.
func (e *env) createFor(t *testing.T, key string) string {
	t.Helper()
	v := e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: key, body: `{}`}, http.StatusCreated)
	return v["id"].(string)
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, 1, Config{})
	first := e.create(t, `{}`)
	w := e.do(t, request{method: "POST", path: "/v1/sessions", key: e.key, body: `{}`})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second create = %d %s; want 429", w.Code, w.Body)
	}
	checkErrorBody(t, w.Body.Bytes(), http.StatusTooManyRequests,
		"You've exceeded your max concurrent sessions limit (limit 1, currently 1). Please contact support to increase your limit.")
	if got := w.Header().Get("x-should-retry"); got != "false" {
		t.Errorf("x-should-retry = %q; want false", got)
	}
	// Another project has its own limit.
	e.createFor(t, e.otherKey)
	// Releasing frees the slot.
	e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + first, key: e.key, body: `{"status":"REQUEST_RELEASE"}`}, http.StatusOK)
	e.create(t, `{}`)
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t, 5, Config{})
	e.do(t, request{method: "GET", path: "/v1/sessions?q=user_metadata%5B%27secret%27%5D%3A%27hush%27", key: e.key})
	w := e.do(t, request{method: "GET", path: "/v1/sessions?apiKey=legacykey", key: "bb_nope"})
	logs := e.logs.String()
	for _, s := range []string{"hush", "secret", "legacykey", "bb_nope", e.key} {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q:\n%s", s, logs)
		}
	}
	var line string
	for l := range strings.Lines(logs) {
		if strings.Contains(l, w.Header().Get("x-request-id")) {
			line = l
		}
	}
	for _, want := range []string{`msg="http request"`, "method=GET", "path=/v1/sessions ", "status=401", "duration="} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %q", line, want)
		}
	}
	if slices.Contains(strings.Fields(logs), "level=ERROR") {
		t.Errorf("4xx logged as errors:\n%s", logs)
	}
}
