package cdpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
)

func TestScanCommand(t *testing.T) {
	tests := []struct {
		name, in          string
		id                int64
		hasID             bool
		method, sessionID string
		code              closeCode // 0: scanned
	}{
		{name: "plain", in: `{"id":12,"method":"Page.navigate","params":{"url":"x\"}"},"sessionId":"S1"}`, id: 12, hasID: true, method: "Page.navigate", sessionID: "S1"},
		{name: "spaces, order", in: ` { "sessionId" : "S" , "params" : [1,{"a":"\\"}] ,"method":"M", "id" : 3 } `, id: 3, hasID: true, method: "M", sessionID: "S"},
		{name: "no id", in: `{"method":"Browser.close"}`, method: "Browser.close"},
		{name: "empty", in: `{}`},
		{name: "escaped backslash", in: `{"id":1,"params":{"a":"b\\\\"},"method":"X"}`, id: 1, hasID: true, method: "X"},
		// F2/F10: Chromium decodes escapes in names and keys before dispatch.
		{name: "escaped method", in: `{"id":9001,"method":"Browser.setDownloadBehavio\u0072","params":{}}`, id: 9001, hasID: true, method: "Browser.setDownloadBehavior"},
		{name: "escaped close", in: `{"id":1,"method":"Browser.clos\u0065"}`, id: 1, hasID: true, method: "Browser.close"},
		{name: "escaped key", in: `{"\u0069d":2,"m\u0065thod":"A\/B\n","session\u0049d":"\ud83d\ude00"}`, id: 2, hasID: true, method: "A/B\n", sessionID: "\U0001F600"},
		{name: "id as Chromium reads it", in: `{"id":1.0e1,"method":"x"}`, id: 10, hasID: true, method: "x"},
		{name: "id not int32", in: `{"id":2147483648,"method":"x"}`, method: "x"},
		{name: "id fraction", in: `{"id":1.5}`},
		{name: "id string", in: `{"id":"1"}`},
		{name: "keys are exact", in: `{"Method":"Browser.close","ID":1}`},
		{name: "duplicate method", in: `{"id":1,"method":"Runtime.evaluate","method":"Browser.close"}`, code: closePolicyViolation},
		{name: "duplicate escaped key", in: `{"id":1,"method":"a","m\u0065thod":"Browser.close"}`, code: closePolicyViolation},
		{name: "duplicate params", in: `{"id":1,"params":{},"params":{}}`, code: closePolicyViolation},
		{name: "duplicate id", in: `{"id":1,"id":2}`, code: closePolicyViolation},
		{name: "nested duplicates are params'", in: `{"id":1,"params":{"a":1,"a":2}}`, id: 1, hasID: true},
		{name: "comment", in: `{"id":1,/*"method":"x",*/"method":"y"}`, code: closePolicyViolation},
		{name: "line comment", in: "{\"id\":1,//\n\"method\":\"y\"}", code: closePolicyViolation},
		{name: "vertical tab", in: "{\"id\":1,\v\"method\":\"y\"}", code: closePolicyViolation},
		{name: "escape v", in: `{"id":1,"method":"a\vb"}`, code: closePolicyViolation},
		{name: "escape x", in: `{"id":1,"method":"a\x41"}`, code: closePolicyViolation},
		{name: "control char", in: "{\"id\":1,\"method\":\"a\tb\"}", code: closePolicyViolation},
		{name: "trailing comma", in: `{"id":1,}`, code: closePolicyViolation},
		{name: "trailing data", in: `{"id":1} {}`, code: closePolicyViolation},
		{name: "leading zero", in: `{"id":01}`, code: closePolicyViolation},
		{name: "bad literal", in: `{"id":1,"params":{"a":nul}}`, code: closePolicyViolation},
		{name: "array", in: `[]`, code: closePolicyViolation},
		{name: "incomplete", in: `{"id":1,`, code: closePolicyViolation},
		{name: "no comma", in: `{"id":1 "method":"x"}`, code: closePolicyViolation},
		{name: "unterminated", in: `{"params":{"a":"unterminated}`, code: closePolicyViolation},
		{name: "nothing", in: ``, code: closePolicyViolation},
		{name: "invalid UTF-8", in: "{\"id\":1,\"method\":\"Browser.close\xff\"}", code: closeInvalidData},
		{name: "overlong UTF-8", in: "{\"id\":1,\"method\":\"\xc1\xa2\"}", code: closeInvalidData},
		{name: "UTF-8 surrogate", in: "{\"params\":\"\xed\xa0\x80\"}", code: closeInvalidData},
		{name: "too deep", in: strings.Repeat("[", 2000), code: closePolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			if tt.name == "too deep" {
				in = append([]byte(`{"params":`), in...)
			}
			cmd, verr := scanCommand(in)
			var code closeCode
			if verr != nil {
				code = verr.code
			}
			if code != tt.code {
				t.Fatalf("scanCommand(%s): %v; want close %d", tt.in, verr, tt.code)
			}
			if code == 0 && (cmd.id != tt.id || cmd.hasID != tt.hasID || string(cmd.method) != tt.method || string(cmd.sessionID) != tt.sessionID) {
				t.Errorf("scanCommand(%s) = %+v %q %q", tt.in, cmd, cmd.method, cmd.sessionID)
			}
			// In pieces of any size, the scanner reads the same.
			for _, n := range []int{1, 2, 3, 7} {
				var s scanner
				for b := in; len(b) > 0; b = b[min(n, len(b)):] {
					s.write(b[:min(n, len(b))])
				}
				got, gerr := s.finish()
				if (gerr == nil) != (verr == nil) || (gerr == nil && (got.id != cmd.id || string(got.method) != string(cmd.method) || string(got.sessionID) != string(cmd.sessionID))) {
					t.Errorf("in pieces of %d: %+v %v; want %+v %v", n, got, gerr, cmd, verr)
				}
			}
		})
	}
}

// FuzzScanCommand checks the scanner against encoding/json, reading fields by their
// exact keys as Chromium's CDP parser does (encoding/json alone would take "methoD" for
// "method"): every strict JSON object of valid UTF-8 whose top-level keys are unique is
// scanned, with the same id, method and sessionId, escapes decoded; anything the
// scanner accepts is such an object; in pieces it reads the same; it never panics.
func FuzzScanCommand(f *testing.F) {
	for _, s := range []string{`{"id":1,"method":"Page.navigate","params":{"url":"a"},"sessionId":"S"}`,
		`{"id":2,"method":"Runtime.evaluate","params":{"expression":"\"}\\\\"}}`, `{"method":"x","params":[{},[],"]"]}`, `{`,
		`{"id":9001,"method":"Browser.setDownloadBehavio\u0072","params":{"behavior":"allow","downloadPath":"/x"}}`,
		`{"id":1,"method":"Browser.clos\u0065"}`, `{"id":1,"m\u0065thod":"a","method":"b"}`, `{"id":1e0,"sessionId":"\ud800"}`,
		`{"id":1,/**/"method":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, verr := scanCommand(b)
		var s scanner
		for p := b; len(p) > 0; p = p[min(5, len(p)):] {
			s.write(p[:min(5, len(p))])
		}
		if cmd2, verr2 := s.finish(); (verr == nil) != (verr2 == nil) || string(cmd2.method) != string(cmd.method) || cmd2.id != cmd.id {
			t.Fatalf("in pieces: %+v %v; whole: %+v %v", cmd2, verr2, cmd, verr)
		}
		strict := json.Valid(b) && utf8.Valid(b)
		if verr == nil && !strict {
			t.Fatalf("scanned %q, which is not strict JSON", b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if tok, err := dec.Token(); !strict || err != nil || tok != json.Delim('{') {
			if verr == nil {
				t.Fatalf("scanned %q, which is not an object", b)
			}
			return
		}
		obj := map[string]json.RawMessage{}
		dup := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				return
			}
			key := k.(string)
			if _, ok := obj[key]; ok && (key == "id" || key == "method" || key == "params" || key == "sessionId") {
				dup = true
			}
			obj[key] = v
		}
		if dup != (verr != nil && verr.code == closePolicyViolation) && !(verr != nil && strings.Contains(verr.msg, "deeply")) {
			t.Fatalf("%q: duplicate %v; scan %v", b, dup, verr)
		}
		if verr != nil {
			return
		}
		var method, session string
		if raw, ok := obj["method"]; ok && json.Unmarshal(raw, &method) == nil && string(cmd.method) != method && !bytes.Contains(raw, []byte(`\u`)) {
			t.Errorf("method %q; want %q", cmd.method, method)
		}
		if raw, ok := obj["sessionId"]; ok && json.Unmarshal(raw, &session) == nil && string(cmd.sessionID) != session && !bytes.Contains(raw, []byte(`\u`)) {
			t.Errorf("sessionId %q; want %q", cmd.sessionID, session)
		}
		if raw, ok := obj["method"]; ok && json.Unmarshal(raw, &method) == nil && utf8.ValidString(method) && !strings.ContainsRune(method, utf8.RuneError) && string(cmd.method) != method {
			t.Errorf("method %q; want %q", cmd.method, method)
		}
		var id float64
		if raw, ok := obj["id"]; ok && json.Unmarshal(raw, &id) == nil && id == float64(int32(id)) && (!cmd.hasID || cmd.id != int64(id)) {
			t.Errorf("id %d (%v); want %v", cmd.id, cmd.hasID, id)
		}
	})
}

// fakeArtifacts collects what the gateway logs.
type fakeArtifacts struct {
	live    bb.LiveSession
	mu      sync.Mutex
	got     []bb.CDPExchange
	targets [][3]string // session, CDP session, target
}

func (f *fakeArtifacts) RecordTarget(id, cdpSession, target string) {
	f.mu.Lock()
	f.targets = append(f.targets, [3]string{id, cdpSession, target})
	f.mu.Unlock()
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

func TestAttachedTarget(t *testing.T) {
	tests := []struct {
		name, msg   string
		sid, target string
		ok          bool
	}{
		{name: "browser level", msg: `{"method":"Target.attachedToTarget","params":{"sessionId":"S1","targetInfo":{"targetId":"T1","type":"page"},"waitingForDebugger":true}}`, sid: "S1", target: "T1", ok: true},
		{name: "nested", msg: `{"method":"Target.attachedToTarget","params":{"sessionId":"S2","targetInfo":{"targetId":"T2","type":"iframe"}},"sessionId":"S1"}`, sid: "S2", target: "T2", ok: true},
		{name: "detached", msg: `{"method":"Target.detachedFromTarget","params":{"sessionId":"S1","targetId":"T1"}}`},
		{name: "response", msg: `{"id":3,"result":{"sessionId":"S1"}}`},
		{name: "no target", msg: `{"method":"Target.attachedToTarget","params":{"sessionId":"S1"}}`},
		{name: "cut", msg: `{"method":"Target.attachedToTarget","params":{"sessionId":"S1","targetInfo":{"targ`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid, target, ok := attachedTarget([]byte(tt.msg))
			if sid != tt.sid || target != tt.target || ok != tt.ok {
				t.Errorf("attachedTarget(%s) = %q, %q, %v; want %q, %q, %v", tt.msg, sid, target, ok, tt.sid, tt.target, tt.ok)
			}
		})
	}
}

// FuzzAttachedTarget checks that no message panics the gateway's attach reader and
// that what it accepts is an attach event naming both a session and a target.
func FuzzAttachedTarget(f *testing.F) {
	f.Add([]byte(`{"method":"Target.attachedToTarget","params":{"sessionId":"S1","targetInfo":{"targetId":"T1"}}}`))
	f.Add([]byte(`{"method":"Target.attachedToTarget","params":{"sessionId":1}}`))
	f.Add([]byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		sid, target, ok := attachedTarget(msg)
		if ok && (sid == "" || target == "" || !bytes.HasPrefix(msg, attachedPrefix)) {
			t.Errorf("attachedTarget(%q) = %q, %q, true", msg, sid, target)
		}
	})
}
