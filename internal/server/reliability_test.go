package server

import (
	"encoding/json"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadLocalesKeepNodeReady is security-review F6: creates whose fingerprint locales
// would make the exec of Chromium fail (a NUL, a 140 000-byte locale) are refused with a
// 400 naming the field, and do not take the node out of rotation.
func TestBadLocalesKeepNodeReady(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--metrics-token", testMetricsToken)
	for i, locale := range []string{"en-US\x00x", strings.Repeat("a", 140000), "en-US\x00y"} {
		body := map[string]any{"browserSettings": map[string]any{"fingerprint": map[string]any{"locales": []string{locale}}}}
		code, resp := call(t, srv.URL, "POST", "/v1/sessions", testAPIKey, body)
		var e struct{ Message string }
		if err := json.Unmarshal(resp, &e); err != nil {
			t.Fatalf("create %d: %s: %v", i, resp, err)
		}
		if code != http.StatusBadRequest || !strings.HasPrefix(e.Message, "body/browserSettings/fingerprint/locales/0 ") {
			t.Errorf("create %d with a bad locale = %d %s; want 400 naming body/browserSettings/fingerprint/locales/0", i, code, resp)
		}
	}
	if code, r := readyz(t, srv.URL, testMetricsToken); code != http.StatusOK || !r.Ready {
		t.Errorf("/readyz after 3 bad creates = %d %+v; want 200 ready", code, r)
	}
	// A good locale still works.
	s := srv.create(t, testAPIKey, map[string]any{"browserSettings": map[string]any{"fingerprint": map[string]any{"locales": []string{"de-DE", "en"}}}})
	srv.release(t, testAPIKey, s.ID)
}

// TestLowDiskNotReady is security-review F7/F8: below the free-space floor creates
// answer 503 (to be retried) and /readyz says the node is not ready, and why.
func TestLowDiskNotReady(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv(), "--min-free-disk", "1000TiB", "--metrics-token", testMetricsToken)
	code, r := readyz(t, srv.URL, testMetricsToken)
	if code != http.StatusServiceUnavailable || r.Ready || r.Checks["disk"].OK ||
		!strings.Contains(r.Checks["disk"].Detail, "low on disk space") {
		t.Errorf("/readyz = %d %+v; want 503 naming the disk", code, r)
	}
	req, err := http.NewRequest("POST", srv.URL+"/v1/sessions", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-BB-API-Key", testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-should-retry") != "true" {
		t.Errorf("create = %d, x-should-retry %q; want 503, true", resp.StatusCode, resp.Header.Get("x-should-retry"))
	}
	if pids := browserPIDs(t, srv.DataDir); len(pids) != 0 {
		t.Errorf("browsers %v started below the floor", pids)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1073741824", want: 1 << 30}, {in: "2GiB", want: 2 << 30}, {in: "512MiB", want: 512 << 20},
		{in: "64M", want: 64 << 20}, {in: "1 TiB", want: 1 << 40}, {in: "-1", want: -1}, {in: "0", want: 0},
		{in: "4KiB", want: 4096}, {in: "10B", want: 10},
		{in: "", wantErr: true}, {in: "2GB", wantErr: true}, {in: "1.5GiB", wantErr: true}, {in: "9999999TiB", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	for _, n := range []int64{2 << 30, 512 << 20, 1000, -1, 0} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), got, err)
		}
	}
}

func TestDiskFree(t *testing.T) {
	free, total, err := diskFree(t.TempDir(), ".")()
	if err != nil || free <= 0 || total < free {
		t.Errorf("diskFree = %d, %d, %v", free, total, err)
	}
	if _, _, err := diskFree("/nonexistent/browserd")(); err == nil {
		t.Error("diskFree of a missing dir: no error")
	}
}

// FuzzParseSize checks that no input panics parseSize and that what it accepts
// round-trips through formatSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "-1", "2GiB", "512MiB", "64M", "1 TiB", "10B", "", "1.5G", "9223372036854775807", "8EiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Errorf("parseSize(%q) = %d; formatSize gives %q, which parses as %d, %v", s, n, formatSize(n), back, err)
		}
	})
}

// TestReleaseWhileStoreLocked is security-review F7, reproduction A, end to end: an
// admin transaction holds SQLite's write lock longer than the server waits for it while
// a session is released. The release answers 503 with x-should-retry: true (it said 200
// RUNNING), the browser stops at once, and once the lock goes the session is COMPLETED
// without another release.
func TestReleaseWhileStoreLocked(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv())
	s := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})

	unlock := sqlitetest.LockWrites(t, filepath.Join(srv.DataDir, "browserd.db"))

	req, err := http.NewRequest("POST", srv.URL+"/v1/sessions/"+s.ID, strings.NewReader(`{"status":"REQUEST_RELEASE"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-BB-API-Key", testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-should-retry") != "true" ||
		!strings.Contains(string(body), "could not be recorded yet") {
		t.Errorf("release with the store locked = %d (x-should-retry %q) %s; want 503, true", resp.StatusCode, resp.Header.Get("x-should-retry"), body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(browserPIDs(t, srv.DataDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the browser still runs 30 s after the release")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := srv.session(t, testAPIKey, s.ID); got.Status != "RUNNING" {
		t.Errorf("while locked the store has %s; want RUNNING (the lock held the write back)", got.Status)
	}

	unlock()
	got := srv.waitStatus(t, testAPIKey, s.ID, "COMPLETED", 30*time.Second)
	if got.EndedAt == "" {
		t.Errorf("session after the lock = %+v; want an endedAt", got)
	}
	if code, _ := call(t, srv.URL, "POST", "/v1/sessions/"+s.ID, testAPIKey, map[string]string{"status": "REQUEST_RELEASE"}); code != http.StatusOK {
		t.Errorf("release after the lock = %d; want 200", code)
	}
}
