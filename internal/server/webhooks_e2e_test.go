package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/browserd/browserd/internal/webhooks"
)

// hookReceiver is a real endpoint that verifies each delivery's signature with the
// webhook's secret; while down it refuses connections (no listener at all).
type hookReceiver struct {
	addr   string
	mu     sync.Mutex
	secret string
	srv    *httptest.Server
	events chan map[string]any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{addr: ln.Addr().String(), events: make(chan map[string]any, 100)}
	ln.Close() // down until up
	t.Cleanup(func() {
		if r.srv != nil {
			r.srv.Close()
		}
	})
	return r
}

// up starts answering on the receiver's address.
func (r *hookReceiver) up(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Skipf("the receiver's port was taken while it was down: %v", err)
	}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		secret := r.secret
		r.mu.Unlock()
		if err := webhooks.Verify(secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		w.WriteHeader(http.StatusNoContent)
		r.events <- m
	})}}
	r.srv.Start()
}

// TestWebhookSessionEnded is the "done": a webhook registered through the API
// receives a signed sessions.ended event with the final status and reason of a real
// session, although its receiver was down when the session ended and the server
// restarted before the receiver came back.
func TestWebhookSessionEnded(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--webhook-allow-http", "--webhook-allow-private-networks", "--webhook-retry-min", "50ms"}
	srv := startServer(t, dir, defaultEnv(), args...)
	rcv := newHookReceiver(t)

	var hook struct {
		ID, Secret string
		EventTypes []string
	}
	callJSON(t, srv.URL, "POST", "/v1/webhooks", testAPIKey, map[string]any{
		"endpoint": "http://" + rcv.addr + "/hooks", "eventTypes": []string{"sessions.ended"},
	}, http.StatusCreated, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	sess := srv.create(t, testAPIKey, nil) // a real Chromium
	if got := srv.release(t, testAPIKey, sess.ID); got.Status != "COMPLETED" {
		t.Fatalf("released session = %+v", got)
	}
	// The receiver is down: attempts fail and are listed.
	deadline := time.Now().Add(time.Minute)
	for {
		var page struct {
			Data []struct {
				Status   string
				Attempts []struct {
					StatusCode *int
					Error      *string
				}
			}
		}
		callJSON(t, srv.URL, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", testAPIKey, nil, http.StatusOK, &page)
		if len(page.Data) == 1 && len(page.Data[0].Attempts) >= 2 {
			if a := page.Data[0].Attempts[0]; a.StatusCode != nil || a.Error == nil || page.Data[0].Status != "pending" {
				t.Errorf("first attempt to a receiver that is down = %+v (%s)", a, page.Data[0].Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempts listed: %+v", page)
		}
		time.Sleep(20 * time.Millisecond)
	}

	srv.stop(t)
	rcv.up(t)
	srv = startServer(t, dir, defaultEnv(), args...)
	var ev map[string]any
	select {
	case ev = <-rcv.events:
	case <-time.After(2 * time.Minute): // a hang guard
		t.Fatal("no sessions.ended delivery after the restart")
	}
	data, _ := ev["data"].(map[string]any)
	if ev["type"] != "sessions.ended" || data["sessionId"] != sess.ID || data["status"] != "COMPLETED" || data["reason"] != "released" {
		t.Errorf("event = %v; want sessions.ended of %s, COMPLETED, released", ev, sess.ID)
	}
	var page struct {
		Data []struct {
			Status   string
			EventID  string
			Attempts []struct{ StatusCode *int }
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		callJSON(t, srv.URL, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", testAPIKey, nil, http.StatusOK, &page)
		if len(page.Data) == 1 && page.Data[0].Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery not marked delivered: %+v", page)
		}
	}
	d := page.Data[0]
	if last := d.Attempts[len(d.Attempts)-1]; last.StatusCode == nil || *last.StatusCode != 204 || d.EventID != ev["id"] {
		t.Errorf("delivered delivery = %+v; want the event's id and a last 204", d)
	}
	// The dashboard lists the webhook and its delivery with every attempt.
	page1 := dashboardGet(t, srv.URL, "/ui/webhooks")
	page2 := dashboardGet(t, srv.URL, "/ui/webhooks/"+hook.ID)
	if !strings.Contains(page1, hook.ID) || !strings.Contains(page2, `data-delivery="`) ||
		!strings.Contains(page2, "delivered") || !strings.Contains(page2, "HTTP 204") || !strings.Contains(page2, "no answer") {
		t.Errorf("dashboard pages do not show the webhook's delivery and attempts:\n%s\n%s", page1, page2)
	}
	// Another project's key sees nothing of it (the default project is the only one
	// with a key here: a wrong key is 401, an unknown id 404).
	if code, _ := call(t, srv.URL, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", "", nil); code != http.StatusUnauthorized {
		t.Errorf("deliveries without a key = %d; want 401", code)
	}
}

// TestWebhooksOtherProjects: a project's webhook is its own. Another project's key gets
// 404 for it on every route (read, change, delete, rotate, deliveries) and lists none
// of it; no key or a bad key gets 401 everywhere, create and list included; the webhook
// is unchanged after all that.
func TestWebhooksOtherProjects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir, defaultEnv(), "--webhook-allow-http", "--webhook-allow-private-networks")
	const endpoint = "http://127.0.0.1:9/hooks-of-project-a" // nothing is delivered here
	type apiWebhook struct {
		ID         string   `json:"id"`
		Endpoint   string   `json:"endpoint"`
		EventTypes []string `json:"eventTypes"`
		ProjectID  string   `json:"projectId"`
		UpdatedAt  string   `json:"updatedAt"`
		Secret     string   `json:"secret"`
	}
	var hook apiWebhook
	create := map[string]any{"endpoint": endpoint, "eventTypes": []string{"sessions.ended"}}
	callJSON(t, srv.URL, "POST", "/v1/webhooks", testAPIKey, create, http.StatusCreated, &hook)
	_, otherKey := otherProject(t, dir)

	path := "/v1/webhooks/" + hook.ID
	checkOthersRefused(t, srv.URL, otherKey, []apiCall{
		{"GET", path, nil},
		{"PATCH", path, map[string]any{"endpoint": "http://127.0.0.1:9/taken-over"}},
		{"POST", path + "/secret", map[string]any{"revokeImmediately": true}},
		{"GET", path + "/deliveries", nil},
		{"DELETE", path, nil},
	}, hook.ProjectID, endpoint, hook.Secret)
	for _, key := range []string{"", badAPIKey} {
		if code, body := call(t, srv.URL, "POST", "/v1/webhooks", key, create); code != http.StatusUnauthorized {
			t.Errorf("create with key %q = %d %s; want 401", key, code, body)
		}
		if code, body := call(t, srv.URL, "GET", "/v1/webhooks", key, nil); code != http.StatusUnauthorized {
			t.Errorf("list with key %q = %d %s; want 401", key, code, body)
		}
	}
	var page struct {
		Data []apiWebhook `json:"data"`
	}
	callJSON(t, srv.URL, "GET", "/v1/webhooks", otherKey, nil, http.StatusOK, &page)
	if len(page.Data) != 0 {
		t.Errorf("another project lists %+v; want none", page.Data)
	}
	var got apiWebhook
	callJSON(t, srv.URL, "GET", path, testAPIKey, nil, http.StatusOK, &got)
	hook.Secret = "" // shown on create only
	if diff := cmp.Diff(hook, got); diff != "" {
		t.Errorf("the webhook changed with the others' calls (-before +after):\n%s", diff)
	}
}

// TestWebhookDownloadCompleted: a file a real browser downloads is announced as a
// signed sessions.downloads.completed event once saved, after the session's created and
// running events.
func TestWebhookDownloadCompleted(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--webhook-allow-http", "--webhook-allow-private-networks")
	rcv := newHookReceiver(t)
	rcv.up(t)
	var hook struct{ ID, Secret string }
	callJSON(t, srv.URL, "POST", "/v1/webhooks", testAPIKey, map[string]any{
		"endpoint":   "http://" + rcv.addr + "/hooks",
		"eventTypes": []string{"sessions.created", "sessions.running", "sessions.downloads.completed"},
	}, http.StatusCreated, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	site := artifactSite(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sess := srv.create(t, testAPIKey, nil)
	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cdp.gotoAndTitle(ctx, sid, site.URL+"/"); err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf(`{ const a = document.createElement('a'); a.href = %q; a.download = ''; document.body.append(a); a.click(); } 1`, site.URL+"/file")
	if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": expr}, nil); err != nil {
		t.Fatal(err)
	}
	// The download is saved (and announced) when a client lists the downloads.
	poll(t, "the download in the zip", func() bool {
		code, b := call(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/downloads", testAPIKey, nil)
		return code == 200 && len(zipFiles(t, b)) == 1
	})
	var types []string
	for len(types) < 3 {
		select {
		case ev := <-rcv.events:
			data, _ := ev["data"].(map[string]any)
			if data["sessionId"] != sess.ID {
				t.Errorf("event of another session: %v", ev)
			}
			types = append(types, ev["type"].(string))
			if ev["type"] == "sessions.downloads.completed" {
				if name, _ := data["fileName"].(string); !regexp.MustCompile(`^report-\d{13}\.txt$`).MatchString(name) || data["size"] != float64(len("the report")) {
					t.Errorf("download event data = %v", data)
				}
			}
		case <-time.After(time.Minute): // a hang guard
			t.Fatalf("events so far %v; want created, running, downloads.completed", types)
		}
	}
	slices.Sort(types)
	if want := []string{"sessions.created", "sessions.downloads.completed", "sessions.running"}; !slices.Equal(types, want) {
		t.Errorf("events = %v; want %v", types, want)
	}
	srv.release(t, testAPIKey, sess.ID)
}

// dashboardGet signs in to the dashboard with the test key and returns a page.
func dashboardGet(t *testing.T, base, path string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"apiKey": {testAPIKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestWebhookPrivateRefused: by default a delivery to a loopback receiver is refused by
// the address policy (the session proxies'), recorded with the reason, and never sent.
func TestWebhookPrivateRefused(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--webhook-allow-http")
	rcv := newHookReceiver(t)
	rcv.up(t)
	var hook struct{ ID string }
	callJSON(t, srv.URL, "POST", "/v1/webhooks", testAPIKey, map[string]any{
		"endpoint": "http://" + rcv.addr + "/hooks", "eventTypes": []string{"sessions.created"},
	}, http.StatusCreated, &hook)
	sess := srv.create(t, testAPIKey, nil)
	srv.release(t, testAPIKey, sess.ID)
	var page struct {
		Data []struct {
			Status   string
			Attempts []struct {
				StatusCode *int
				Error      *string
			}
		}
	}
	poll(t, "a refused attempt", func() bool {
		callJSON(t, srv.URL, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", testAPIKey, nil, http.StatusOK, &page)
		return len(page.Data) == 1 && len(page.Data[0].Attempts) > 0
	})
	a := page.Data[0].Attempts[0]
	if a.StatusCode != nil || a.Error == nil || !strings.Contains(*a.Error, "loopback") || !strings.Contains(*a.Error, "--webhook-allow-private-networks") {
		t.Errorf("attempt = %+v; want refused as loopback, naming the flag", a)
	}
	if len(rcv.events) != 0 {
		t.Error("the receiver got a delivery")
	}
}
