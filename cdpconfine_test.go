package browserd_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestConfineCDPCommand(t *testing.T) {
	live := bb.LiveSession{DownloadDir: "/data/s/downloads", UploadDir: "/data/s/uploads"}
	tests := []struct {
		name, method, params string
		want                 string       // params sent instead; "" = unchanged
		wantCode             bb.ErrorCode // or the refusal
	}{
		{name: "stagehand downloads", method: "Browser.setDownloadBehavior", params: `{"behavior":"allow","downloadPath":"downloads","eventsEnabled":true}`,
			want: `{"behavior":"allow","downloadPath":"/data/s/downloads","eventsEnabled":true}`},
		{name: "absolute path", method: "Browser.setDownloadBehavior", params: `{"behavior":"allowAndName","downloadPath":"/etc","browserContextId":"C"}`,
			want: `{"behavior":"allowAndName","browserContextId":"C","downloadPath":"/data/s/downloads"}`},
		{name: "default", method: "Page.setDownloadBehavior", params: `{"behavior":"default"}`,
			want: `{"behavior":"allow","downloadPath":"/data/s/downloads"}`},
		{name: "deny", method: "Browser.setDownloadBehavior", params: `{"behavior":"deny"}`,
			want: `{"behavior":"deny","downloadPath":"/data/s/downloads"}`},
		{name: "escaped key", method: "Browser.setDownloadBehavior", params: `{"behavior":"allow","download\u0050ath":"/etc"}`,
			want: `{"behavior":"allow","downloadPath":"/data/s/downloads"}`},
		{name: "duplicate key", method: "Browser.setDownloadBehavior", params: `{"behavior":"allow","downloadPath":"/a","download\u0050ath":"/etc"}`, wantCode: bb.CodeInvalid},
		{name: "duplicate behavior", method: "Page.setDownloadBehavior", params: `{"behavior":"deny","behavior":"allow"}`, wantCode: bb.CodeInvalid},
		{name: "bad behavior", method: "Browser.setDownloadBehavior", params: `{"behavior":1}`, wantCode: bb.CodeInvalid},
		{name: "no params", method: "Browser.setDownloadBehavior", params: ``, wantCode: bb.CodeInvalid},
		{name: "params array", method: "Browser.setDownloadBehavior", params: `[]`, wantCode: bb.CodeInvalid},
		{name: "two objects", method: "Browser.setDownloadBehavior", params: `{"behavior":"allow"}{}`, wantCode: bb.CodeInvalid},
		{name: "upload", method: "DOM.setFileInputFiles", params: `{"files":["/tmp/.uploads/a b.txt","/data/s/downloads/r.pdf"],"backendNodeId":7}`,
			want: `{"backendNodeId":7,"files":["/data/s/uploads/a b.txt","/data/s/downloads/r.pdf"]}`},
		{name: "upload elsewhere", method: "DOM.setFileInputFiles", params: `{"files":["/tmp/.uploads/a","/home/x"]}`, wantCode: bb.CodeForbidden},
		{name: "upload traversal", method: "DOM.setFileInputFiles", params: `{"files":["/tmp/.uploads/../../etc/passwd"]}`, wantCode: bb.CodeForbidden},
		{name: "upload sub-directory", method: "DOM.setFileInputFiles", params: `{"files":["/tmp/.uploads/sub/x"]}`, wantCode: bb.CodeForbidden},
		{name: "download dir dot-dot", method: "DOM.setFileInputFiles", params: `{"files":["/data/s/downloads/../../../etc/passwd"]}`, wantCode: bb.CodeForbidden},
		{name: "relative", method: "DOM.setFileInputFiles", params: `{"files":["x.txt"]}`, wantCode: bb.CodeForbidden},
		{name: "no files", method: "DOM.setFileInputFiles", params: `{"nodeId":1}`, wantCode: bb.CodeInvalid},
		{name: "drag files", method: "Input.dispatchDragEvent", params: `{"type":"drop","x":1,"y":2,"data":{"items":[],"files":["/tmp/.uploads/a"],"dragOperationsMask":1}}`,
			want: `{"type":"drop","x":1,"y":2,"data":{"items":[],"files":["/data/s/uploads/a"],"dragOperationsMask":1}}`},
		{name: "drag files elsewhere", method: "Input.dispatchDragEvent", params: `{"type":"drop","data":{"items":[],"files":["/etc/passwd"]}}`, wantCode: bb.CodeForbidden},
		{name: "drag duplicate files", method: "Input.dispatchDragEvent", params: `{"type":"drop","data":{"files":[],"fil\u0065s":["/etc/passwd"]}}`, wantCode: bb.CodeInvalid},
		{name: "drag without files", method: "Input.dispatchDragEvent", params: `{"type":"dragEnter","x":1,"y":2,"data":{"items":[{"mimeType":"text/plain","data":"x"}],"dragOperationsMask":1}}`,
			want: `{"type":"dragEnter","x":1,"y":2,"data":{"items":[{"mimeType":"text/plain","data":"x"}],"dragOperationsMask":1}}`},
		{name: "sendMessageToTarget", method: "Target.sendMessageToTarget", params: `{"message":"{}"}`, wantCode: bb.CodeForbidden},
		{name: "other method", method: "Runtime.evaluate", params: `{"a":1,"a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.ConfineCDPCommand(tt.method, json.RawMessage(tt.params), live)
			if tt.wantCode != "" || err != nil {
				if bb.CodeOf(err) != tt.wantCode {
					t.Fatalf("ConfineCDPCommand = %s, %v; want %s", got, err, tt.wantCode)
				}
				return
			}
			if tt.want == "" {
				if got != nil {
					t.Errorf("changed to %s; want unchanged", got)
				}
				return
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
	// Without the session's directories, nothing that names a file goes through.
	if _, err := bb.ConfineCDPCommand("Browser.setDownloadBehavior", json.RawMessage(`{"behavior":"allow"}`), bb.LiveSession{}); bb.CodeOf(err) != bb.CodeForbidden {
		t.Errorf("no download dir: %v; want forbidden", err)
	}
}

// FuzzConfineCDPCommand checks that whatever params a client sends, a confined command
// that is let through downloads only to the session's directory and reads only the
// session's files, and that nothing panics.
func FuzzConfineCDPCommand(f *testing.F) {
	for _, s := range []string{`{"behavior":"allow","downloadPath":"/etc"}`, `{"behavior":"default"}`,
		`{"files":["/tmp/.uploads/a","/data/s/downloads/b"]}`, `{"download\u0050ath":"x","downloadPath":"y"}`,
		`{"files":["/tmp/.uploads/..\u002fx"]}`, `[]`, `{"a":1}{}`} {
		f.Add(s)
	}
	live := bb.LiveSession{DownloadDir: "/data/s/downloads", UploadDir: "/data/s/uploads"}
	f.Fuzz(func(t *testing.T, params string) {
		for _, m := range []string{"Browser.setDownloadBehavior", "DOM.setFileInputFiles"} {
			out, err := bb.ConfineCDPCommand(m, json.RawMessage(params), live)
			if err != nil {
				if c := bb.CodeOf(err); c != bb.CodeInvalid && c != bb.CodeForbidden {
					t.Fatalf("%s(%q): %v", m, params, err)
				}
				continue
			}
			var got struct {
				DownloadPath *string  `json:"downloadPath"`
				Files        []string `json:"files"`
			}
			var obj map[string]json.RawMessage
			if json.Unmarshal(out, &obj) != nil || json.Unmarshal(out, &got) != nil {
				t.Fatalf("%s(%q) = %s: not an object", m, params, out)
			}
			if m == "Browser.setDownloadBehavior" && (got.DownloadPath == nil || *got.DownloadPath != live.DownloadDir) {
				t.Fatalf("%s(%q) = %s", m, params, out)
			}
			for _, p := range got.Files {
				if !strings.HasPrefix(p, live.UploadDir+"/") && !strings.HasPrefix(p, live.DownloadDir+"/") || strings.Contains(p, "/../") {
					t.Fatalf("%s(%q) = %s", m, params, out)
				}
			}
		}
	})
}
