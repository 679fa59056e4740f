package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/postgres/pgtest"
)

// rawCall does an API request and returns the response with its body read.
func rawCall(t testing.TB, base, method, path, key, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-BB-API-Key", key)
	}
	if strings.HasPrefix(path, "/readyz") {
		req.Header.Set("Authorization", "Bearer "+pgMetricsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const pgMetricsToken = "pg-metrics-token-0123456789"

// storeCheck returns /readyz's store check.
func storeCheck(t testing.TB, base string) (status int, c check) {
	t.Helper()
	resp, body := rawCall(t, base, "GET", "/readyz", "", "")
	var r readyResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz = %s: %v", body, err)
	}
	return resp.StatusCode, r.Checks["store"]
}

// TestPostgresOutage runs the server on PostgreSQL and stops PostgreSQL under it: API
// calls answer 503 in the error shape with retry-after, /readyz says the database is
// down, a running session keeps running (its browser answers over the gateway), and once
// PostgreSQL is back the same server serves again without a restart, with the session
// in its right state. The password of --database is never logged.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	c := pgtest.StartPrivate(t)
	url := c.NewDatabase(t)
	srv := startServer(t, t.TempDir(), defaultEnv(), "--database", url, "--metrics-token", pgMetricsToken)
	page := pageServer(t, "before the outage")
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	if code, chk := storeCheck(t, srv.URL); code != http.StatusOK || !chk.OK || chk.Detail != "postgres" {
		t.Errorf("/readyz before the outage: %d, store %+v; want 200, ok, postgres", code, chk)
	}
	sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if title, err := cdp.gotoAndTitle(ctx, sid, page.URL); err != nil || title != "before the outage" {
		t.Fatalf("goto before the outage = %q, %v", title, err)
	}

	c.Stop(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/sessions/" + sess.ID, ""},
		{"GET", "/v1/sessions", ""},
		{"POST", "/v1/sessions", "{}"},
	} {
		resp, body := rawCall(t, srv.URL, r.method, r.path, testAPIKey, r.body)
		var e struct {
			StatusCode int    `json:"statusCode"`
			Error      string `json:"error"`
			Message    string `json:"message"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
			e.StatusCode != http.StatusServiceUnavailable || e.Error != "Service Unavailable" {
			t.Errorf("%s %s during the outage = %d %s; want 503 in the error shape", r.method, r.path, resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") == "" || resp.Header.Get("x-should-retry") != "true" {
			t.Errorf("%s %s during the outage: retry-after %q, x-should-retry %q; want both", r.method, r.path,
				resp.Header.Get("Retry-After"), resp.Header.Get("x-should-retry"))
		}
	}
	if code, chk := storeCheck(t, srv.URL); code != http.StatusServiceUnavailable || chk.OK || !strings.HasPrefix(chk.Detail, "postgres: ") {
		t.Errorf("/readyz during the outage: %d, store %+v; want 503, not ok, postgres: …", code, chk)
	}
	// The browser does not need the database: the session goes on.
	if title, err := cdp.gotoAndTitle(ctx, sid, page.URL+"?during"); err != nil || title != "before the outage" {
		t.Errorf("goto during the outage = %q, %v; want the page", title, err)
	}

	c.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := rawCall(t, srv.URL, "GET", "/v1/sessions/"+sess.ID, testAPIKey, "")
		if resp.StatusCode == http.StatusOK {
			var got apiSession
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.Status != "RUNNING" {
				t.Errorf("session after the outage = %s (%v); want RUNNING", body, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET session 30s after PostgreSQL came back = %d %s; want 200", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, chk := storeCheck(t, srv.URL); code != http.StatusOK || !chk.OK {
		t.Errorf("/readyz after the outage: %d, store %+v; want 200, ok", code, chk)
	}
	if title, err := cdp.gotoAndTitle(ctx, sid, page.URL+"?after"); err != nil || title != "before the outage" {
		t.Errorf("goto after the outage = %q, %v; want the page", title, err)
	}
	second := srv.create(t, testAPIKey, nil)
	for _, id := range []string{sess.ID, second.ID} {
		if got := srv.release(t, testAPIKey, id); got.Status != "COMPLETED" {
			t.Errorf("release %s after the outage: %s; want COMPLETED", id, got.Status)
		}
	}
	srv.stop(t)
	if pw := postgresPassword(url); pw == "" || strings.Contains(srv.stderr.String()+srv.stdout.String(), pw) {
		t.Errorf("the server's output shows the database password (or the URL has none)")
	}
}
