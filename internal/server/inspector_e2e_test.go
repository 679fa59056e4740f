package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// startMain runs server.Main in the test's process (as servertest does, which this
// package cannot import) and returns it open.
func startMain(t *testing.T, args ...string) *Main {
	t.Helper()
	chrometest.Chrome(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	searchable(t, dataDir)
	m := NewMain("test")
	m.Stdout, m.Stderr = io.Discard, t.Output()
	argv := append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--pool-size", "0", "--allow-private-networks"}, args...)
	env := defaultEnv()
	if err := m.ParseFlags(argv, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
		chrometest.AssertNoLeaks(t, filepath.Join(dataDir, "run"))
	})
	return m
}

// seedBrowserEvents appends to a session's logs what the pinned browser-event shape
// (issue 19) gives for n requests spread over span from start: each sent and answered
// (every fifth failing: requestWillBeSent, then loadingFailed), a console message every
// tenth, and one CDP command with its response per request. About 4 logs per request.
func seedBrowserEvents(t testing.TB, st bb.ArtifactStore, sessionID string, start time.Time, n int, span time.Duration) {
	t.Helper()
	var batch []bb.SessionLog
	event := func(at time.Time, method string, params any) {
		b, err := json.Marshal(params)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, bb.SessionLog{SessionID: sessionID, Method: method, PageID: 1,
			Request: &bb.LogMessage{Body: b, Raw: string(b), Timestamp: at}})
	}
	flush := func() {
		if err := st.AppendSessionLogs(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	mono := 1000.0
	step := span / time.Duration(max(n, 1))
	for i := range n {
		at := start.Add(time.Duration(i) * step)
		id := fmt.Sprintf("req-%d", i)
		u := fmt.Sprintf("https://example.test/asset/%d.png", i)
		event(at, "Network.requestWillBeSent", map[string]any{"requestId": id, "type": "Image",
			"timestamp": mono + at.Sub(start).Seconds(), "wallTime": float64(at.UnixMilli()) / 1000,
			"request": map[string]any{"url": u, "method": "GET", "headers": map[string]string{"Accept": "image/*"}}})
		end := at.Add(15 * time.Millisecond)
		if i%5 == 4 {
			event(end, "Network.loadingFailed", map[string]any{"requestId": id, "errorText": "net::ERR_CONNECTION_REFUSED",
				"canceled": false, "timestamp": mono + at.Sub(start).Seconds() + 0.015})
		} else {
			event(end, "Network.responseReceived", map[string]any{"requestId": id, "type": "Image", "timestamp": mono + at.Sub(start).Seconds() + 0.01,
				"response": map[string]any{"url": u, "status": 200, "statusText": "OK", "mimeType": "image/png",
					"headers": map[string]string{"Content-Type": "image/png"}, "remoteIPAddress": "192.0.2.1", "encodedDataLength": 1234}})
			event(end, "Network.loadingFinished", map[string]any{"requestId": id, "encodedDataLength": 1234, "timestamp": mono + at.Sub(start).Seconds() + 0.015})
		}
		if i%10 == 0 {
			event(at, "Runtime.consoleAPICalled", map[string]any{"type": "error",
				"args": []any{map[string]any{"type": "string", "value": fmt.Sprintf(`<img src=x onerror="window.xss=1"> console %d`, i)}}})
		}
		params := json.RawMessage(fmt.Sprintf(`{"expression":"step(%d)"}`, i))
		batch = append(batch, bb.SessionLog{SessionID: sessionID, Method: "Runtime.evaluate", PageID: 1,
			Request:  &bb.LogMessage{Body: params, Raw: string(params), Timestamp: at},
			Response: &bb.LogMessage{Body: json.RawMessage(`{"result":{"type":"number","value":1}}`), Raw: "{}", Timestamp: at.Add(2 * time.Millisecond)}})
		if len(batch) >= 500 {
			flush()
		}
	}
	flush()
}

// dashboardClient signs in to a server's dashboard with key and reads the inspector
// page's token.
type dashboardClient struct {
	t     *testing.T
	base  string
	c     *http.Client
	token string
}

func signInDashboard(t *testing.T, base, key, sessionID string) *dashboardClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	d := &dashboardClient{t: t, base: base, c: &http.Client{Jar: jar}}
	resp, err := d.c.PostForm(base+"/ui/login", url.Values{"apiKey": {key}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, body, h := d.get("/ui/sessions/"+sessionID+"/inspector", false, nil)
	if code != http.StatusOK {
		t.Fatalf("GET inspector = %d: %s", code, body)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("inspector CSP = %q; want scripts from self only, no framing", csp)
	}
	m := regexp.MustCompile(`data-token="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token in the inspector page")
	}
	d.token = m[1]
	return d
}

// get fetches path; script requests carry Sec-Fetch-Mode: cors and, with token, the
// page's token.
func (d *dashboardClient) get(path string, script bool, header map[string]string) (int, string, http.Header) {
	d.t.Helper()
	req, err := http.NewRequestWithContext(d.t.Context(), "GET", d.base+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if script {
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-Dashboard-Token", d.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := d.c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

type logPage struct {
	Logs []struct {
		Seq     int64  `json:"seq"`
		Method  string `json:"method"`
		Request *struct {
			Params json.RawMessage `json:"params"`
		} `json:"request"`
	} `json:"logs"`
	Next int64 `json:"next"`
}

// TestInspectorRoutes checks the inspector's JSON routes on the production server: the
// sign-in and the page's token, another project's session (404, as the API), paging,
// bad parameters, the recording stream, files and the project's usage.
func TestInspectorRoutes(t *testing.T) {
	m := startMain(t)
	ctx := t.Context()
	var sess apiSession
	callJSON(t, m.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{}, http.StatusCreated, &sess)
	if code, body := upload(t, m.URL, testAPIKey, sess.ID, "notes.txt", "the notes"); code != http.StatusOK {
		t.Fatalf("upload = %d %s", code, body)
	}
	callJSON(t, m.URL, "POST", "/v1/sessions/"+sess.ID, testAPIKey, map[string]any{"status": "REQUEST_RELEASE"}, http.StatusOK, &sess)
	seedBrowserEvents(t, m.DB, sess.ID, time.Now().Add(-time.Minute), 12, 12*20*time.Millisecond)

	now := time.Now().UTC().Truncate(time.Millisecond)
	other := &bb.Project{ID: bb.NewID(), Name: "other", OwnerID: m.Project.OwnerID, DefaultTimeout: bb.DefaultProjectTimeout,
		Concurrency: 3, CreatedAt: now, UpdatedAt: now}
	if err := m.DB.CreateProject(ctx, other); err != nil {
		t.Fatal(err)
	}
	otherKey, err := createKey(ctx, m.DB, other.ID, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	d := signInDashboard(t, m.URL, testAPIKey, sess.ID)
	logs := "/ui/api/sessions/" + sess.ID + "/logs"

	t.Run("paging", func(t *testing.T) {
		var all []string
		after := int64(0)
		for range 100 {
			code, body, _ := d.get(fmt.Sprintf("%s?after=%d&limit=7", logs, after), true, nil)
			if code != 200 {
				t.Fatalf("GET logs = %d: %s", code, body)
			}
			var p logPage
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Logs {
				if l.Seq <= after {
					t.Fatalf("seq %d not after %d", l.Seq, after)
				}
				// The session's own page attach (Target.attachedToTarget, a real event
				// logged when the recorder attached before the release) is not seeded.
				if !strings.HasPrefix(l.Method, "Target.") {
					all = append(all, l.Method)
				}
			}
			if p.Next == 0 {
				break
			}
			after = p.Next
		}
		// 12 requests: 10 answered (3 logs), 2 failed (2), 2 console, 12 commands.
		if got, want := len(all), 10*3+2*2+2+12; got != want {
			t.Errorf("paged through %d logs, want %d: %v", got, want, all)
		}
		if all[0] != "Network.requestWillBeSent" {
			t.Errorf("first log %q", all[0])
		}
	})
	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			path   string
			script bool
			header map[string]string
			want   int
		}{
			{"no token", logs, false, map[string]string{"Sec-Fetch-Mode": "cors"}, http.StatusForbidden},
			{"wrong token", logs, true, map[string]string{"X-Dashboard-Token": "nope"}, http.StatusForbidden},
			{"cross-site", logs, true, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{"bad after", logs + "?after=x", true, nil, http.StatusBadRequest},
			{"negative after", logs + "?after=-1", true, nil, http.StatusBadRequest},
			{"limit 0", logs + "?limit=0", true, nil, http.StatusBadRequest},
			{"limit too big", logs + "?limit=5001", true, nil, http.StatusBadRequest},
			{"unknown session", "/ui/api/sessions/" + bb.NewID() + "/logs", true, nil, http.StatusNotFound},
			{"bad id", "/ui/api/sessions/..%2f/logs", true, nil, http.StatusNotFound},
			{"days", "/ui/api/project?days=91", true, nil, http.StatusBadRequest},
			{"file outside", "/ui/sessions/" + sess.ID + "/files/downloads/..", false, nil, http.StatusNotFound},
			{"file kind", "/ui/sessions/" + sess.ID + "/files/other/a.txt", false, nil, http.StatusNotFound},
			{"replay page ..", "/ui/api/sessions/" + sess.ID + "/replays/%2e%2e", true, nil, http.StatusNotFound},
			{"replay segment with a slash", "/ui/api/sessions/" + sess.ID + "/replays/0/a%2fb", true, nil, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, body, _ := d.get(tt.path, tt.script, tt.header)
				if code != tt.want {
					t.Errorf("GET %s = %d, want %d: %s", tt.path, code, tt.want, body)
				}
			})
		}
		anon := &dashboardClient{t: t, base: m.URL, c: http.DefaultClient, token: d.token}
		if code, _, _ := anon.get(logs, true, nil); code != http.StatusUnauthorized {
			t.Errorf("GET logs signed out = %d, want 401", code)
		}
	})
	t.Run("other project", func(t *testing.T) {
		// Signed in with the other project's key, the session is not found, as in the API.
		o := &dashboardClient{t: t, base: m.URL}
		jar, _ := cookiejar.New(nil)
		o.c = &http.Client{Jar: jar}
		resp, err := o.c.PostForm(m.URL+"/ui/login", url.Values{"apiKey": {otherKey}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, _, _ := o.get("/ui/sessions/"+sess.ID+"/inspector", false, nil); code != http.StatusNotFound {
			t.Errorf("other project's inspector page = %d, want 404", code)
		}
		_, home, _ := o.get("/ui/project", false, nil)
		tok := regexp.MustCompile(`data-token="([^"]+)"`).FindStringSubmatch(home)
		if tok == nil {
			t.Fatal("no token on the project page")
		}
		o.token = tok[1]
		for _, p := range []string{logs, "/ui/api/sessions/" + sess.ID + "/recording", "/ui/api/sessions/" + sess.ID + "/files",
			"/ui/api/sessions/" + sess.ID + "/replays", "/ui/api/sessions/" + sess.ID + "/replays/0"} {
			if code, body, _ := o.get(p, true, nil); code != http.StatusNotFound {
				t.Errorf("other project GET %s = %d, want 404: %s", p, code, body)
			}
		}
		if code, _, _ := o.get("/ui/sessions/"+sess.ID+"/files/uploads/notes.txt", false, nil); code != http.StatusNotFound {
			t.Errorf("other project's file = %d, want 404", code)
		}
		code, body, _ := o.get("/ui/api/project", true, nil)
		if code != 200 || !strings.Contains(body, `"projectId":"`+other.ID+`"`) || !strings.Contains(body, `"limit":3`) {
			t.Errorf("other project's usage = %d %s", code, body)
		}
	})
	t.Run("recording", func(t *testing.T) {
		code, body, h := d.get("/ui/api/sessions/"+sess.ID+"/recording", true, nil)
		if code != 200 || h.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("GET recording = %d %s", code, h.Get("Content-Type"))
		}
		sc := bufio.NewScanner(strings.NewReader(body))
		sc.Buffer(nil, 64<<20)
		n, last := 0, int64(0)
		for sc.Scan() {
			var ev bb.RecordingEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Timestamp < last {
				t.Fatalf("line %d: %v (%s)", n, err, sc.Bytes())
			}
			last = ev.Timestamp
			n++
		}
		t.Logf("%d recording events", n)
	})
	t.Run("files and usage", func(t *testing.T) {
		code, body, _ := d.get("/ui/api/sessions/"+sess.ID+"/files", true, nil)
		if code != 200 || !strings.Contains(body, `"downloads":[]`) || !strings.Contains(body, `"uploads":[{"name":"notes.txt","size":9,`) {
			t.Errorf("GET files = %d %s", code, body)
		}
		code, body, h := d.get("/ui/sessions/"+sess.ID+"/files/uploads/notes.txt", false, nil)
		if code != 200 || body != "the notes" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
			h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET the upload = %d %q %v", code, body, h)
		}
		code, body, _ = d.get("/ui/api/project?days=7", true, nil)
		var u struct {
			Days     []int64          `json:"days"`
			Sessions map[string][]int `json:"sessions"`
			Limit    int              `json:"limit"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &u) != nil || len(u.Days) != 7 || u.Sessions["COMPLETED"][6] != 1 {
			t.Errorf("GET project = %d %s", code, body)
		}
	})
}
