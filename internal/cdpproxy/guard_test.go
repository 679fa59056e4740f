package cdpproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
)

// TestGatewayConfines checks what the browser gets (the fake echoes it) for commands
// the gateway rewrites or refuses, however the client spells them (F2: escapes in
// method names and keys, duplicate keys, non-strict JSON).
func TestGatewayConfines(t *testing.T) {
	dir := t.TempDir()
	live := bb.LiveSession{DownloadDir: filepath.Join(dir, "dl"), UploadDir: filepath.Join(dir, "up")}
	tests := []struct {
		name, msg string
		want      []string  // substrings of what the browser got
		notWant   string    // … and one it must not contain
		close     closeCode // or the close the client gets
	}{
		{name: "escaped method", msg: `{"id":9001,"method":"Browser.setDownloadBehavio\u0072","params":{"behavior":"allow","downloadPath":"/tmp/evil"}}`,
			want: []string{`"downloadPath":"` + live.DownloadDir + `"`, `"id":9001`}, notWant: "/tmp/evil"},
		{name: "escaped Page method", msg: `{"id":1,"method":"\u0050age.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/tmp/evil"},"sessionId":"S"}`,
			want: []string{`"downloadPath":"` + live.DownloadDir + `"`}, notWant: "/tmp/evil"},
		{name: "escaped key", msg: `{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","download\u0050ath":"/tmp/evil"}}`,
			want: []string{`"downloadPath":"` + live.DownloadDir + `"`}, notWant: "/tmp/evil"},
		{name: "escaped behavior", msg: `{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"def\u0061ult"}}`,
			want: []string{`"behavior":"allow"`, `"downloadPath":"` + live.DownloadDir + `"`}},
		{name: "duplicate param", msg: `{"id":7,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"a","download\u0050ath":"/tmp/evil"}}`,
			want: []string{`"id":7`, `"method":"browserd refused the command: Browser.setDownloadBehavior: params has the key \"downloadPath\" more than once"`}, notWant: "/tmp/evil"},
		{name: "upload elsewhere", msg: `{"id":8,"method":"DOM.setFileInputFiles","params":{"files":["/etc/passwd"],"nodeId":1},"sessionId":"P"}`,
			want: []string{`"id":8`, `"sessionId":"P"`, `"method":"browserd refused the command: DOM.setFileInputFiles: \"/etc/passwd\" is not an uploaded file`}, notWant: `"files"`},
		{name: "upload escaped traversal", msg: `{"id":8,"method":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/..\u002f..\u002fetc/passwd"]}}`,
			want: []string{`browserd refused the command`}, notWant: `"files"`},
		{name: "upload mapped", msg: `{"id":9,"method":"DOM.setFileInputFiles","params":{"files":["/tmp/.uploads/a.txt","` + live.DownloadDir + `/b.pdf"]}}`,
			want: []string{`"files":["` + live.UploadDir + `/a.txt","` + live.DownloadDir + `/b.pdf"]`}},
		{name: "sendMessageToTarget", msg: `{"id":10,"method":"Target.sendMessageToTarget","params":{"sessionId":"S","message":"{\"id\":1,\"method\":\"Page.setDownloadBehavior\"}"}}`,
			want: []string{`"id":10`, `browserd refused the command: Target.sendMessageToTarget`}, notWant: "Page.setDownloadBehavior"},
		{name: "long sessionId", msg: `{"id":11,"sessionId":"` + strings.Repeat("S", 5000) + `","method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/tmp/evil"}}`,
			want: []string{`"downloadPath":"` + live.DownloadDir + `"`}, notWant: "/tmp/evil"},
		{name: "binary", msg: "binary", close: closeUnsupported},
		{name: "refused without id", msg: `{"method":"DOM.setFileInputFiles","params":{"files":["/etc/passwd"]}}`, close: closePolicyViolation},
		{name: "duplicate method", msg: `{"id":1,"method":"Runtime.evaluate","m\u0065thod":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/tmp/evil"}}`,
			close: closePolicyViolation},
		{name: "comment", msg: `{"id":1,"method":"Browser.setDownloadBehavior",/**/"params":{"behavior":"allow","downloadPath":"/tmp/evil"}}`, close: closePolicyViolation},
		{name: "invalid UTF-8", msg: "{\"id\":1,\"method\":\"Browser.setDownloadBehavior\xff\"}", close: closeInvalidData},
		{name: "other methods untouched", msg: `{"id":1,"method":"Runtime.evaluate","params":{"expression":"\"downloadPath\"","a":1,"a":2}}`,
			want: []string{`{"id":1,"method":"Runtime.evaluate","params":{"expression":"\"downloadPath\"","a":1,"a":2}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Artifacts: &fakeArtifacts{live: live}})
			c := dial(t, h.URL())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			typ, msg := websocket.MessageText, []byte(tt.msg)
			if tt.name == "binary" {
				typ, msg = websocket.MessageBinary, []byte(`{"id":1,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/tmp/evil"}}`)
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if tt.close != 0 {
				if code := websocket.CloseStatus(err); code != websocket.StatusCode(tt.close) {
					t.Errorf("got %s, %v; want close %d", got, err, tt.close)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("browser got %s; want %s in it", got, w)
				}
			}
			if tt.notWant != "" && strings.Contains(string(got), tt.notWant) {
				t.Errorf("browser got %s, with %s", got, tt.notWant)
			}
		})
	}
}

// A message over the inspect limit is streamed to the browser; if its method is one the
// gateway confines, the connection is closed before the browser has all of it.
func TestGatewayStreamed(t *testing.T) {
	live := bb.LiveSession{DownloadDir: "/dl", UploadDir: "/up"}
	pad := strings.Repeat("Test.padding ", 1000) // 13 kB; the fake records messages with "Test."
	tests := []struct {
		name   string
		frames []string
		close  closeCode // 0: echoed
	}{
		{name: "large evaluate", frames: []string{`{"id":1,"method":"Runtime.evaluate","params":{"expression":"` + pad + `"}}`}},
		{name: "method last", frames: []string{`{"id":1,"params":{"behavior":"allow","downloadPath":"/tmp/evil","x":"` + pad + `"},"method":"Browser.setDownloadBehavio\u0072"}`},
			close: closeTooBig},
		{name: "fragments growing", frames: []string{`{"id":1,"params":{"x":"`, pad[:900], pad, `"},"method":"DOM.setFileInputFiles"}`}, close: closeTooBig},
		{name: "fragments, empty last", frames: []string{`{"id":1,"params":{"x":"`, pad, `"},"method":"Target.sendMessageToTarget"}`, ""}, close: closeTooBig},
		{name: "invalid JSON late", frames: []string{`{"id":1,"params":{"x":"`, pad, `"},/**/"method":"a"}`}, close: closePolicyViolation},
		{name: "large fragments echoed", frames: []string{`{"id":1,"params":{"x":"`, pad, `"},"method":"Browser.getVersion"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Artifacts: &fakeArtifacts{live: live}, InspectMessageSize: 1024})
			c := dial(t, h.URL())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			wr, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.frames {
				if _, err := wr.Write([]byte(f)); err != nil {
					t.Fatal(err)
				}
			}
			if err := wr.Close(); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if tt.close == 0 {
				if want := strings.Join(tt.frames, ""); err != nil || string(got) != want {
					t.Errorf("echo %.80s…, %v; want the message", got, err)
				}
				return
			}
			if code := websocket.CloseStatus(err); code != websocket.StatusCode(tt.close) {
				t.Fatalf("got %.80s, %v; want close %d", got, err, tt.close)
			}
			select {
			case m := <-h.cdp.received:
				t.Errorf("the browser got the refused message: %.80s…", m)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// F5.1: a client message over the inspect limit is never assembled: relaying 32 MiB
// allocates a small fraction of it, and the browser gets every byte.
func TestStreamedMessageNotBuffered(t *testing.T) {
	client, rc := net.Pipe()
	rb, browser := net.Pipe()
	cfg := relayConfig{maxMessage: 64 << 20, inspectMax: 1 << 20, writeTimeout: 5 * time.Second, closeWait: 100 * time.Millisecond}
	var seen command
	h := hooks{
		client: func([]byte, command) verdict { t.Error("a large message was assembled"); return verdict{} },
		clientStreamed: func(cmd command, head []byte, size int64) verdict {
			seen = command{method: append([]byte(nil), cmd.method...), id: cmd.id}
			return verdict{}
		},
	}
	rl := newRelay(cfg, h, rc, bufio.NewReader(rc), rb, bufio.NewReader(rb))
	done := make(chan endCause, 1)
	go func() { done <- rl.run(func() (closeCode, string) { return closeInternalError, "lost" }) }()
	got := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, browser); got <- n }()
	go func() { _, _ = io.Copy(io.Discard, client) }()

	payload := `{"id":5,"method":"Runtime.evaluate","params":{"expression":"` + strings.Repeat("x", 32<<20) + `"}}`
	frame := frameBytes(true, opText, true, payload)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := client.Write(frame); err != nil {
		t.Fatal(err)
	}
	// The relay has taken every byte once the next frame goes through.
	if _, err := client.Write(frameBytes(true, opPing, true, "")); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	client.Close()
	browser.Close()
	<-done
	if n := <-got; n < int64(len(frame)) {
		t.Errorf("the browser got %d bytes; want the whole frame (%d)", n, len(frame))
	}
	if string(seen.method) != "Runtime.evaluate" || seen.id != 5 {
		t.Errorf("streamed hook saw %q id %d", seen.method, seen.id)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("relaying a 32 MiB message allocated %d bytes; want under 4 MiB", alloc)
	}
	if c := cap(rl.msg); c > 1<<20 {
		t.Errorf("assembly buffer grew to %d bytes", c)
	}
}

// F5.1/F13: a session has at most MaxConnsPerSession CDP connections; the next upgrade
// is refused with 429 in the API's error shape, and a slot frees when one leaves.
func TestGatewayConnCap(t *testing.T) {
	h := newHarness(t, Config{MaxConnsPerSession: 2})
	c1 := dial(t, h.URL())
	dial(t, h.URL())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, h.URL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, %+v; want 429", err, resp)
	}
	var body wireError
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.StatusCode != 429 || body.Code != 429 ||
		body.Error != "Too Many Requests" || !strings.Contains(body.Message, "already has 2 CDP connections") {
		t.Errorf("body %+v, %v", body, err)
	}
	// The fake browser counts a connection after it answered the upgrade, which the
	// gateway may have passed on to the client already: wait for both, then check that
	// the refused one never reached the browser.
	waitFor(t, "the two connections at the browser", func() bool { return h.cdp.conns.Load() >= 2 })
	time.Sleep(50 * time.Millisecond)
	if n := h.cdp.conns.Load(); n != 2 {
		t.Errorf("the browser got %d connections; want 2", n)
	}
	c1.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "a free slot", func() bool {
		c, _, err := websocket.Dial(ctx, h.URL(), nil)
		if err != nil {
			return false
		}
		c.CloseNow()
		return true
	})
}

// An escaped Browser.close is seen (F10): the session is told before the browser.
func TestGatewayEscapedBrowserClose(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	roundTrip(t, c, websocket.MessageText, []byte(`{"id":1,"method":"Browser.clos\u0065"}`))
	if n := h.attachment(0).closing.Load(); n != 1 {
		t.Errorf("BrowserClosing called %d times; want 1", n)
	}
}

// BenchmarkScanCommand measures the scanner on a 4 MB command (a screenshot-sized
// string) and on a small one.
func BenchmarkScanCommand(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"small", `{"id":12,"method":"Runtime.evaluate","params":{"expression":"1+1","returnByValue":true},"sessionId":"8F1C2B3D4E5F60718293A4B5C6D7E8F9"}`},
		{"4MB", `{"id":1,"method":"Fetch.fulfillRequest","params":{"requestId":"r","responseCode":200,"body":"` + strings.Repeat("iVBORw0KGgo", 4<<20/11) + `"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			var s scanner
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				s.reset()
				s.write(msg)
				if _, err := s.finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
