package webdriver

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	bb "github.com/browserd/browserd"
)

func TestIsCDPCommand(t *testing.T) {
	for rest, want := range map[string]bool{
		"/goog/cdp/execute": true, "/chromium/send_command": true, "/chromium/send_command_and_get_result": true,
		"/goog/cdp/execut%65": true, "/GOOG/CDP/EXECUTE": true, "/url": false, "/goog/cdp": false, "": false,
	} {
		if got := isCDPCommand(rest); got != want {
			t.Errorf("isCDPCommand(%q) = %v; want %v", rest, got, want)
		}
	}
}

type fakeDirs struct{ live bb.LiveSession }

func (f fakeDirs) Live(string) (bb.LiveSession, bool) { return f.live, true }

type closingAttachment struct {
	attachment
	closing atomic.Int64
}

func (a *closingAttachment) BrowserClosing() { a.closing.Add(1) }

// confineCDP applies the gateway's rules to {"cmd":…,"params":…} bodies (F2).
func TestConfineCDP(t *testing.T) {
	live := bb.LiveSession{DownloadDir: "/s/dl", UploadDir: "/s/up"}
	tests := []struct {
		name, body string
		want       string // in the body relayed; "" when refused
		wantErr    string
	}{
		{name: "download path", body: `{"cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/etc"}}`, want: `"downloadPath":"/s/dl"`},
		{name: "escaped cmd", body: `{"cmd":"Page.setDownloadBehavio\u0072","params":{"behavior":"allow","downloadPath":"/etc"}}`, want: `"downloadPath":"/s/dl"`},
		{name: "upload", body: `{"cmd":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/a.txt"],"nodeId":1}}`, want: `"files":["/s/up/a.txt"]`},
		{name: "other", body: `{"cmd":"Runtime.evaluate","params":{"expression":"1"}}`, want: `{"cmd":"Runtime.evaluate","params":{"expression":"1"}}`},
		{name: "file elsewhere", body: `{"cmd":"DOM.setFileInputFiles","params":{"files":["/etc/passwd"]}}`, wantErr: "is not an uploaded file"},
		{name: "duplicate cmd", body: `{"cmd":"Runtime.evaluate","c\u006dd":"Browser.setDownloadBehavior","params":{}}`, wantErr: "more than once"},
		{name: "duplicate param", body: `{"cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"a","download\u0050ath":"/etc"}}`, wantErr: "more than once"},
		{name: "comment", body: `{"cmd":"Browser.setDownloadBehavior",/**/"params":{}}`, wantErr: "JSON object"},
		{name: "invalid UTF-8", body: "{\"cmd\":\"Browser.setDownloadBehavior\xff\",\"params\":{}}", wantErr: "UTF-8"},
		{name: "no cmd", body: `{"params":{}}`, wantErr: "string cmd"},
		{name: "sendMessageToTarget", body: `{"cmd":"Target.sendMessageToTarget","params":{"message":"{}"}}`, wantErr: "flatten"},
	}
	h := &Handler{cfg: Config{Artifacts: fakeDirs{live}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := &wdSession{sessionID: "s", att: &closingAttachment{}}
			out, werr := h.confineCDP(ws, []byte(tt.body))
			if tt.wantErr != "" {
				if werr == nil || werr.status != 400 || werr.code != errInvalidArgument || !strings.Contains(werr.message, tt.wantErr) {
					t.Errorf("confineCDP = %s, %v; want 400 invalid argument with %q", out, werr, tt.wantErr)
				}
				return
			}
			if werr != nil || !strings.Contains(string(out), tt.want) || !json.Valid(out) {
				t.Errorf("confineCDP = %s, %v; want %s in it", out, werr, tt.want)
			}
		})
	}
	// Browser.close, however spelled, tells the session first; without the session's
	// directories, file commands are refused.
	ws := &wdSession{sessionID: "s", att: &closingAttachment{}}
	if _, werr := h.confineCDP(ws, []byte(`{"cmd":"Browser.clos\u0065","params":{}}`)); werr != nil || ws.att.(*closingAttachment).closing.Load() != 1 {
		t.Errorf("Browser.close: %v, closing %d", werr, ws.att.(*closingAttachment).closing.Load())
	}
	if _, werr := (&Handler{}).confineCDP(ws, []byte(`{"cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow"}}`)); werr == nil {
		t.Error("setDownloadBehavior without Artifacts was let through")
	}
}

// FuzzConfineCDP: any body is refused with 400 or relayed as one valid JSON object, and
// a relayed download command always names the session's directory.
func FuzzConfineCDP(f *testing.F) {
	for _, s := range []string{`{"cmd":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/etc"}}`,
		`{"cmd":"Browser.clos\u0065","params":{}}`, `{"cmd":"x","cmd":"y"}`, `{"cmd":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/a"]}}`, `{`} {
		f.Add([]byte(s))
	}
	h := &Handler{cfg: Config{Artifacts: fakeDirs{bb.LiveSession{DownloadDir: "/s/dl", UploadDir: "/s/up"}}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, werr := h.confineCDP(&wdSession{sessionID: "s", att: &closingAttachment{}}, body)
		if werr != nil {
			if werr.status != 400 {
				t.Fatalf("%q: %v", body, werr)
			}
			return
		}
		// Exact keys, as chromedriver reads them (encoding/json's struct fields would
		// also take "CMD").
		var top map[string]json.RawMessage
		var cmd string
		var params map[string]json.RawMessage
		if !json.Valid(out) || json.Unmarshal(out, &top) != nil {
			t.Fatalf("%q relayed as %q", body, out)
		}
		if json.Unmarshal(top["cmd"], &cmd) != nil {
			t.Fatalf("%q relayed without a string cmd: %q", body, out)
		}
		if cmd == "Browser.setDownloadBehavior" || cmd == "Page.setDownloadBehavior" {
			var path string
			if json.Unmarshal(top["params"], &params) != nil || json.Unmarshal(params["downloadPath"], &path) != nil || path != "/s/dl" {
				t.Fatalf("%q relayed as %q", body, out)
			}
		}
	})
}
