package cdpproxy

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestScanCommand(t *testing.T) {
	tests := []struct {
		in                string
		id                int64
		hasID             bool
		method, sessionID string
		ok                bool
	}{
		{in: `{"id":12,"method":"Page.navigate","params":{"url":"x\"}"},"sessionId":"S1"}`, id: 12, hasID: true, method: "Page.navigate", sessionID: "S1", ok: true},
		{in: ` { "sessionId" : "S" , "params" : [1,{"a":"\\"}] ,"method":"M", "id" : 3 } `, id: 3, hasID: true, method: "M", sessionID: "S", ok: true},
		{in: `{"method":"Browser.close"}`, method: "Browser.close", ok: true},
		{in: `{}`, ok: true},
		{in: `{"id":1,"params":{"a":"b\\\\"},"method":"X"}`, id: 1, hasID: true, method: "X", ok: true},
		{in: `[]`},
		{in: `{"id":1,`},
		{in: `{"id":1 "method":"x"}`},
		{in: `{"params":{"a":"unterminated}`},
		{in: ``},
	}
	for _, tt := range tests {
		cmd, ok := scanCommand([]byte(tt.in))
		if !tt.ok && !ok {
			continue // what was read before the error does not matter
		}
		if ok != tt.ok || cmd.id != tt.id || cmd.hasID != tt.hasID || string(cmd.method) != tt.method || string(cmd.sessionID) != tt.sessionID {
			t.Errorf("scanCommand(%s) = %+v %q %q, %v", tt.in, cmd, cmd.method, cmd.sessionID, ok)
		}
	}
}

// FuzzScanCommand checks the scanner against encoding/json: on any valid JSON object it
// finds the same id, method and sessionId, and it never panics.
func FuzzScanCommand(f *testing.F) {
	for _, s := range []string{`{"id":1,"method":"Page.navigate","params":{"url":"a"},"sessionId":"S"}`,
		`{"id":2,"method":"Runtime.evaluate","params":{"expression":"\"}\\\\"}}`, `{"method":"x","params":[{},[],"]"]}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, ok := scanCommand(b)
		var ref struct {
			ID        *json.Number `json:"id"`
			Method    *string      `json:"method"`
			SessionID *string      `json:"sessionId"`
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) != nil || obj == nil {
			return
		}
		// Keys match exactly, as in Chromium's CDP parser: encoding/json would also take
		// "methoD" for "method", so each field comes from its exact key.
		for key, dst := range map[string]any{"id": &ref.ID, "method": &ref.Method, "sessionId": &ref.SessionID} {
			if raw, ok := obj[key]; ok && json.Unmarshal(raw, dst) != nil {
				return
			}
		}
		if !ok {
			t.Fatalf("valid object %q not scanned", b)
		}
		// Plain strings only: the scanner keeps escapes and invalid UTF-8 as they are
		// (encoding/json turns invalid bytes into U+FFFD).
		plain := func(b []byte) bool { return utf8.Valid(b) && !strings.ContainsAny(string(b), `\`) }
		if ref.Method != nil && plain(cmd.method) && string(cmd.method) != *ref.Method {
			t.Errorf("method %q; want %q", cmd.method, *ref.Method)
		}
		if ref.SessionID != nil && plain(cmd.sessionID) && string(cmd.sessionID) != *ref.SessionID {
			t.Errorf("sessionId %q; want %q", cmd.sessionID, *ref.SessionID)
		}
		if ref.ID != nil {
			if n, err := ref.ID.Int64(); err == nil && (!cmd.hasID || cmd.id != n) {
				t.Errorf("id %d (%v); want %d", cmd.id, cmd.hasID, n)
			}
		}
	})
}

func TestRewrite(t *testing.T) {
	live := bb.LiveSession{DownloadDir: "/data/s/downloads", UploadDir: "/data/s/uploads"}
	tests := []struct {
		name, in, want string // want "" = unchanged
	}{
		{"stagehand downloads", `{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"downloads","eventsEnabled":true}}`,
			`{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/data/s/downloads","eventsEnabled":true}}`},
		{"absolute path", `{"id":2,"method":"Browser.setDownloadBehavior","params":{"behavior":"allowAndName","downloadPath":"/etc","browserContextId":"C"},"sessionId":"x"}`,
			`{"id":2,"method":"Browser.setDownloadBehavior","params":{"behavior":"allowAndName","browserContextId":"C","downloadPath":"/data/s/downloads"},"sessionId":"x"}`},
		{"default", `{"id":3,"method":"Page.setDownloadBehavior","params":{"behavior":"default"}}`,
			`{"id":3,"method":"Page.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/data/s/downloads"}}`},
		{"deny", `{"id":4,"method":"Browser.setDownloadBehavior","params":{"behavior":"deny"}}`, ""},
		{"upload", `{"id":5,"method":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/a b.txt","/home/x"],"backendNodeId":7},"sessionId":"P"}`,
			`{"id":5,"method":"DOM.setFileInputFiles","params":{"backendNodeId":7,"files":["/data/s/uploads/a b.txt","/home/x"]},"sessionId":"P"}`},
		{"upload traversal", `{"id":6,"method":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/../../etc/passwd","/tmp/.uploads/sub/x"]}}`, ""},
		{"no params", `{"id":7,"method":"DOM.setFileInputFiles"}`, ""},
		{"bad params", `{"id":8,"method":"Browser.setDownloadBehavior","params":{"behavior":1}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, ok := scanCommand([]byte(tt.in))
			if !ok {
				t.Fatal("not scanned")
			}
			got, changed := rewrite([]byte(tt.in), cmd.method, live)
			if tt.want == "" {
				if changed {
					t.Errorf("rewrote to %s; want unchanged", got)
				}
				return
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil || !changed {
				t.Fatalf("rewrite = %s, %v", got, changed)
			}
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("rewrite (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeArtifacts collects what the gateway logs.
type fakeArtifacts struct {
	live bb.LiveSession
	mu   sync.Mutex
	got  []bb.CDPExchange
}

func (f *fakeArtifacts) Live(id string) (bb.LiveSession, bool) { return f.live, id == "sess" }
func (f *fakeArtifacts) RecordCDP(ex bb.CDPExchange) {
	f.mu.Lock()
	f.got = append(f.got, ex)
	f.mu.Unlock()
}
func (f *fakeArtifacts) exchanges() []bb.CDPExchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bb.CDPExchange(nil), f.got...)
}

func TestGatewayArtifacts(t *testing.T) {
	dir := t.TempDir()
	fa := &fakeArtifacts{live: bb.LiveSession{DownloadDir: filepath.Join(dir, "dl"), UploadDir: filepath.Join(dir, "up"), Logs: true, LogPayloadLimit: 160}}
	h := newHarness(t, Config{Artifacts: fa})
	c := dial(t, h.URL())
	ctx := t.Context()
	roundTrip := func(msg string) string {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The fake browser echoes: what comes back is what the browser got.
	echo := roundTrip(`{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"downloads"}}`)
	if !strings.Contains(echo, `"downloadPath":"`+fa.live.DownloadDir+`"`) {
		t.Errorf("browser got %s; want the session's download dir", echo)
	}
	big := `{"id":2,"method":"Runtime.evaluate","params":{"expression":"` + strings.Repeat("x", 300) + `"},"sessionId":"AB"}`
	if echo := roundTrip(big); echo != big {
		t.Errorf("a large command was changed: %s", echo)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":3,"method":"Browser.getVersion"}`)); err != nil {
		t.Fatal(err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "three exchanges", func() bool { return len(fa.exchanges()) == 3 })
	got := fa.exchanges()
	if e := got[0]; e.Method != "Browser.setDownloadBehavior" || e.CDPSessionID != "" || e.Response == nil ||
		!strings.Contains(string(e.Request), `"downloads"`) || e.RequestSize != len(e.Request) {
		t.Errorf("first exchange = %+v; want the client's original command and its response", e)
	}
	if e := got[1]; e.Method != "Runtime.evaluate" || e.CDPSessionID != "AB" || len(e.Request) != 160 || e.RequestSize != len(big) ||
		len(e.Response) != 160 || e.ResponseSize != len(big) || e.ResponseAt.Before(e.RequestAt) {
		t.Errorf("second exchange = %+v; want cut copies with their sizes", e)
	}
	// Browser.getVersion never got its echo read… but the browser answered it, or the
	// connection closed first: either way it is logged once.
	if e := got[2]; e.Method != "Browser.getVersion" {
		t.Errorf("third exchange = %+v", e)
	}
}

// A session that keeps no logs gets its paths mapped and nothing logged.
func TestGatewayNoLogs(t *testing.T) {
	fa := &fakeArtifacts{live: bb.LiveSession{UploadDir: "/up", LogPayloadLimit: 64}}
	h := newHarness(t, Config{Artifacts: fa})
	c := dial(t, h.URL())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg := `{"id":1,"method":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/f.txt"],"nodeId":3}}`
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"/up/f.txt"`) {
		t.Errorf("browser got %s; want the upload path mapped", b)
	}
	c.Close(websocket.StatusNormalClosure, "")
	time.Sleep(100 * time.Millisecond)
	if got := fa.exchanges(); len(got) != 0 {
		t.Errorf("logged %d exchanges for a session without logs", len(got))
	}
}
