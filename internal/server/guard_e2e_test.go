package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/browserd/browserd/internal/webdriver"
)

// rawCall sends msg as it is and returns the reply with id.
func (c *cdpClient) rawCall(ctx context.Context, msg string, id int) (cdpMessage, error) {
	if err := c.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return cdpMessage{}, err
	}
	for {
		m, err := c.read(ctx)
		if err != nil || m.ID == id {
			return m, err
		}
	}
}

// downloadVia has a new tab of the session (through its connectUrl) download a file
// named name (a click on <a download> with a data: URL: no network needed), waits until
// the file is in the session's /downloads or in chosen, and fails unless it is in
// /downloads and chosen is empty.
func downloadVia(t *testing.T, ctx context.Context, srv *testServer, sess apiSession, name, chosen string) {
	t.Helper()
	c := mustDial(t, ctx, sess.ConnectURL)
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	click := `const a = document.createElement('a'); a.href = 'data:text/plain,downloaded'; a.download = ` + quoteJSON(name) +
		`; document.body.append(a); a.click(); 'ok'`
	if err := c.call(ctx, att.SessionID, "Runtime.evaluate", map[string]any{"expression": click}, nil); err != nil {
		t.Fatal(err)
	}
	stem := strings.TrimSuffix(name, filepath.Ext(name))
	inDownloads := func() bool {
		code, b := call(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/downloads", testAPIKey, nil)
		if code != http.StatusOK {
			return false
		}
		for f := range zipFiles(t, b) {
			if strings.HasPrefix(f, stem+"-") {
				return true
			}
		}
		return false
	}
	inChosen := func() bool { _, err := os.Stat(filepath.Join(chosen, name)); return err == nil }
	poll(t, name+" downloaded", func() bool { return inChosen() || inDownloads() })
	if inChosen() {
		t.Errorf("%s was written in the client's chosen directory %s", name, chosen)
	}
	empty(t, chosen)
	if !inDownloads() {
		t.Errorf("%s is not in the session's downloads", name)
	}
	c.c.Close(websocket.StatusNormalClosure, "")
}

// empty fails unless dir has no entries: nothing was written where the client chose.
func empty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was written in the client's chosen directory", e.Name())
	}
}

// TestConfinementEndToEnd reproduces the three bypasses of F2 (security review) against a
// real server and Chromium: an escaped method name through connectUrl, the live view's
// wsUrl, and WebDriver's goog/cdp/execute each ask for downloads in a directory of the
// client's choosing; the files land in the session's downloads and never there. It
// also checks F10: an escaped Browser.close (through connectUrl, the live view, or
// WebDriver) ends the session COMPLETED, not ERROR.
func TestConfinementEndToEnd(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir(), defaultEnv())
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	t.Run("escaped method through connectUrl", func(t *testing.T) {
		chosen := t.TempDir()
		sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
		c := mustDial(t, ctx, sess.ConnectURL)
		reply, err := c.rawCall(ctx, `{"id":9001,"method":"Browser.setDownloadBehavio\u0072","params":{"behavior":"allow","downloadPath":`+quoteJSON(chosen)+`}}`, 9001)
		if err != nil || reply.Error != nil {
			t.Fatalf("setDownloadBehavior: %+v, %v", reply.Error, err)
		}
		downloadVia(t, ctx, srv, sess, "escaped.txt", chosen)
		// Duplicate keys are refused with an error, not run.
		reply, err = c.rawCall(ctx, `{"id":9002,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"x","download\u0050ath":`+quoteJSON(chosen)+`}}`, 9002)
		if err != nil || reply.Error == nil || !strings.Contains(reply.Error.Message, "more than once") {
			t.Errorf("duplicate key: %+v, %v; want an error", reply, err)
		}
		srv.release(t, testAPIKey, sess.ID)
	})

	t.Run("live view wsUrl", func(t *testing.T) {
		chosen := t.TempDir()
		sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
		var live struct {
			WSURL string `json:"wsUrl"`
		}
		callJSON(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/debug", testAPIKey, nil, http.StatusOK, &live)
		lv := mustDial(t, ctx, live.WSURL)
		if err := lv.call(ctx, "", "Browser.setDownloadBehavior", map[string]any{"behavior": "allow", "downloadPath": chosen}, nil); err != nil {
			t.Fatal(err)
		}
		downloadVia(t, ctx, srv, sess, "lv.txt", chosen)
		// A file outside the session's uploads is refused.
		err := lv.call(ctx, "", "DOM.setFileInputFiles", map[string]any{"files": []string{"/etc/hostname"}, "nodeId": 1}, nil)
		if err == nil || !strings.Contains(err.Error(), "is not an uploaded file") {
			t.Errorf("setFileInputFiles /etc/hostname through the live view: %v; want refused", err)
		}
		// Browser.close through DevTools ends the session COMPLETED.
		if _, err := lv.rawCall(ctx, `{"id":77,"method":"Browser.clos\u0065"}`, 77); err == nil {
			t.Log("Browser.close answered before the browser exited")
		}
		srv.waitStatus(t, testAPIKey, sess.ID, "COMPLETED", 30*time.Second)
	})

	t.Run("webdriver goog/cdp/execute", func(t *testing.T) {
		if _, err := webdriver.FindChromedriver(""); err != nil {
			t.Skip("no chromedriver:", err)
		}
		chosen := t.TempDir()
		sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
		wd := webDriver(t, ctx, srv.URL, sess.SigningKey)
		wdSession := newWebDriverSession(t, wd)
		exec := "/session/" + wdSession + "/goog/cdp/execute"
		if code, body := wd("POST", exec, `{"cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":`+quoteJSON(chosen)+`}}`); code != 200 {
			t.Fatalf("goog/cdp/execute = %d %s", code, body)
		}
		downloadVia(t, ctx, srv, sess, "wd.txt", chosen)
		for _, tt := range []struct{ name, body, want string }{
			{"file elsewhere", `{"cmd":"DOM.setFileInputFiles","params":{"files":["/etc/hostname"],"nodeId":1}}`, "is not an uploaded file"},
			{"duplicate key", `{"cmd":"Runtime.evaluate","cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":` + quoteJSON(chosen) + `}}`, "more than once"},
			{"escaped duplicate param", `{"cmd":"Page.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"a","download\u0050ath":` + quoteJSON(chosen) + `}}`, "more than once"},
			{"comment", `{"cmd":"Browser.setDownloadBehavior",/**/"params":{}}`, "JSON object"},
		} {
			if code, body := wd("POST", exec, tt.body); code != 400 || !strings.Contains(body, tt.want) || !strings.Contains(body, `"invalid argument"`) {
				t.Errorf("%s: %d %s; want 400 invalid argument, %q", tt.name, code, body, tt.want)
			}
		}
		// Browser.close through chromedriver ends the session COMPLETED.
		wd("POST", "/session/"+wdSession+"/chromium/send_command_and_get_result", `{"cmd":"Browser.clos\u0065","params":{}}`)
		srv.waitStatus(t, testAPIKey, sess.ID, "COMPLETED", 30*time.Second)
	})

	t.Run("escaped Browser.close", func(t *testing.T) {
		sess := srv.create(t, testAPIKey, map[string]any{"keepAlive": true})
		c := mustDial(t, ctx, sess.ConnectURL)
		if err := c.c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"Browser.clos\u0065"}`)); err != nil {
			t.Fatal(err)
		}
		srv.waitStatus(t, testAPIKey, sess.ID, "COMPLETED", 30*time.Second)
		code, b := call(t, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/logs", testAPIKey, nil)
		if code != 200 || !bytes.Contains(b, []byte(`"method":"Browser.close"`)) {
			t.Errorf("logs = %d %.300s; want the decoded method", code, b)
		}
	})
}

// webDriver returns a caller of browserd's WebDriver endpoint at base with a
// session's signing key: it sends body (JSON) and returns the status and the body.
func webDriver(t testing.TB, ctx context.Context, base, signingKey string) func(method, path, body string) (int, string) {
	return func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+"/webdriver"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-BB-Signing-Key", signingKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

// newWebDriverSession makes a WebDriver New Session through wd and returns its id.
func newWebDriverSession(t testing.TB, wd func(method, path, body string) (int, string)) string {
	t.Helper()
	code, body := wd("POST", "/session", `{"capabilities":{}}`)
	var created struct {
		Value struct {
			SessionID string `json:"sessionId"`
		} `json:"value"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &created) != nil || created.Value.SessionID == "" {
		t.Fatalf("WebDriver New Session = %d %s", code, body)
	}
	return created.Value.SessionID
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}
