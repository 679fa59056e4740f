package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// artifactSite serves a page with a file input and a paragraph, and a download.
func artifactSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>artifacts</title></head><body><p id="x">original</p><input type="file" id="f"></body></html>`)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
		fmt.Fprint(w, "the report")
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// upload posts one multipart part "file" to the session's uploads.
func upload(t *testing.T, base, key, id, name, content string) (int, string) {
	t.Helper()
	code, b := postFile(t, base+"/v1/sessions/"+id+"/uploads", key, name, []byte(content))
	return code, string(b)
}

// postFile posts data as the multipart part "file" (named name) to url with an API
// key, and returns the status and the body.
func postFile(t testing.TB, url, key, name string, data []byte) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data) // a bytes.Buffer does not fail
	mw.Close()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-BB-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// openArtifactPage sets the browser's download behavior and path, attaches to its page
// and opens artifactSite's page there; it returns the CDP session id of the page.
func openArtifactPage(t testing.TB, ctx context.Context, cdp *cdpClient, site *httptest.Server, behavior, path string) string {
	t.Helper()
	if err := cdp.call(ctx, "", "Browser.setDownloadBehavior", map[string]any{"behavior": behavior, "downloadPath": path, "eventsEnabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if title, err := cdp.gotoAndTitle(ctx, sid, site.URL+"/"); err != nil || title != "artifacts" {
		t.Fatalf("goto %s = %q, %v", site.URL, title, err)
	}
	return sid
}

func zipFiles(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("downloads is not a zip: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(r)
		r.Close()
		out[f.Name] = string(c)
	}
	return out
}

// poll calls check every 100 ms until it returns true, for up to a minute.
func poll(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var downloadName = regexp.MustCompile(`^report-\d{13}\.txt$`)

// TestArtifactsEndToEnd drives a real server and Chromium: a download of a served
// attachment (with Stagehand's downloadPath "downloads") lands in the zip; an uploaded
// file set on <input type=file> is read back by page script; the logs hold the
// navigation's commands; the recording has a full snapshot and the test's DOM change;
// everything stays readable after the session ends.
func TestArtifactsEndToEnd(t *testing.T) {
	t.Parallel()
	artifactsEndToEnd(t, defaultEnv())
}

// artifactsEndToEnd is TestArtifactsEndToEnd on a server with env and args (another
// blob store: blobs_e2e_test.go). It returns the session's id.
func artifactsEndToEnd(t *testing.T, env map[string]string, args ...string) string {
	srv := startServer(t, t.TempDir(), env, append([]string{"--upload-max-size", "1"}, args...)...)
	site := artifactSite(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sess := srv.create(t, testAPIKey, nil)
	base := "/v1/sessions/" + sess.ID

	if code, body := upload(t, srv.URL, testAPIKey, sess.ID, "hello.txt", "hello from upload"); code != 200 || !strings.Contains(body, "File uploaded successfully") {
		t.Fatalf("upload = %d %s", code, body)
	}
	if code, _ := upload(t, srv.URL, testAPIKey, sess.ID, "big.bin", strings.Repeat("x", 1<<20+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized upload = %d; want 413", code)
	}

	cdp := mustDial(t, ctx, sess.ConnectURL)
	sid := openArtifactPage(t, ctx, cdp, site, "allow", "downloads")
	var doc struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	if err := cdp.call(ctx, sid, "DOM.getDocument", nil, &doc); err != nil {
		t.Fatal(err)
	}
	var input struct {
		NodeID int `json:"nodeId"`
	}
	if err := cdp.call(ctx, sid, "DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": "#f"}, &input); err != nil {
		t.Fatal(err)
	}
	if err := cdp.call(ctx, sid, "DOM.setFileInputFiles", map[string]any{"nodeId": input.NodeID, "files": []string{"/tmp/.uploads/hello.txt"}}, nil); err != nil {
		t.Fatal(err)
	}
	eval := func(expr string) string {
		t.Helper()
		var res struct {
			Result struct {
				Value any `json:"value"`
			} `json:"result"`
		}
		if err := cdp.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(res.Result.Value)
	}
	if got := eval(`document.getElementById('f').files[0].text()`); got != "hello from upload" {
		t.Errorf("page read the uploaded file as %q", got)
	}
	eval(`document.getElementById('x').textContent = 'changed-by-e2e'`)
	eval(fmt.Sprintf(`location.href = %q; 1`, site.URL+"/file"))

	getZip := func() map[string]string {
		code, b := call(t, srv.URL, "GET", base+"/downloads", testAPIKey, nil)
		if code != 200 {
			t.Fatalf("downloads = %d %s", code, b)
		}
		return zipFiles(t, b)
	}
	poll(t, "the download in the zip", func() bool {
		for name, content := range getZip() {
			if downloadName.MatchString(name) && content == "the report" {
				return true
			}
		}
		return false
	})
	type logEntry struct {
		Method  string `json:"method"`
		Request struct {
			Params json.RawMessage `json:"params"`
		} `json:"request"`
		Response *struct {
			Result json.RawMessage `json:"result"`
		} `json:"response"`
		FrameID string `json:"frameId"`
	}
	var logs []logEntry
	callJSON(t, srv.URL, "GET", base+"/logs", testAPIKey, nil, 200, &logs)
	methods := map[string]bool{}
	for _, l := range logs {
		methods[l.Method] = true
		if l.Method == "Page.navigate" && strings.Contains(string(l.Request.Params), site.URL) && (l.Response == nil || l.FrameID == "") {
			t.Errorf("Page.navigate log without its response or frameId: %+v", l)
		}
	}
	for _, m := range []string{"Browser.setDownloadBehavior", "Target.attachToTarget", "Page.enable", "Page.navigate", "DOM.setFileInputFiles", "Runtime.evaluate"} {
		if !methods[m] {
			t.Errorf("logs lack %s (have %v)", m, methods)
		}
	}
	type event struct {
		Type      int             `json:"type"`
		Timestamp int64           `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
		SessionID string          `json:"sessionId"`
	}
	var rec []event
	poll(t, "the recording of the DOM change", func() bool {
		callJSON(t, srv.URL, "GET", base+"/recording", testAPIKey, nil, 200, &rec)
		full, change := false, false
		for _, e := range rec {
			full = full || (e.Type == 2 && strings.Contains(string(e.Data), "original"))
			change = change || (e.Type == 3 && strings.Contains(string(e.Data), "changed-by-e2e"))
		}
		return full && change
	})
	for i := 1; i < len(rec); i++ {
		if rec[i].Timestamp < rec[i-1].Timestamp || rec[i].SessionID != sess.ID {
			t.Fatalf("recording event %d out of order or of another session: %+v", i, rec[i])
		}
	}

	srv.release(t, testAPIKey, sess.ID)
	poll(t, "the downloads after the session", func() bool { return len(getZip()) == 1 })
	callJSON(t, srv.URL, "GET", base+"/logs", testAPIKey, nil, 200, &logs)
	if len(logs) == 0 {
		t.Error("no logs after the session")
	}
	if code, _ := upload(t, srv.URL, testAPIKey, sess.ID, "late.txt", "x"); code != http.StatusNotFound {
		t.Errorf("upload to an ended session = %d; want 404", code)
	}

	// logSession:false and recordSession:false: nothing kept, 422.
	quiet := srv.create(t, testAPIKey, map[string]any{"browserSettings": map[string]any{"logSession": false, "recordSession": false}})
	for _, p := range []string{"/logs", "/recording"} {
		if code, b := call(t, srv.URL, "GET", "/v1/sessions/"+quiet.ID+p, testAPIKey, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("GET %s of a quiet session = %d %s; want 422", p, code, b)
		}
	}
	srv.release(t, testAPIKey, quiet.ID)
	srv.stop(t)
	return sess.ID
}
