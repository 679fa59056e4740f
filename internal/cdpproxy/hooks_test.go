package cdpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawFrame is a frame as it crossed a connection, and its unmasked payload.
type rawFrame struct {
	h       header
	raw     []byte
	payload []byte
}

// pipeRelay is a relay over in-memory connections; the test holds the far ends.
type pipeRelay struct {
	client, browser     net.Conn
	toClient, toBrowser chan rawFrame // frames the relay wrote, closed at EOF
	done                chan endCause
	observedMu          sync.Mutex
	observed            []string
	observedTrunc       []bool
	wg                  sync.WaitGroup // the relay and the collectors; Cleanup waits
}

func newPipeRelay(t *testing.T, maxMessage int64, clientHook func([]byte) ([]byte, bool), observe bool) *pipeRelay {
	t.Helper()
	p := &pipeRelay{toClient: make(chan rawFrame, 64), toBrowser: make(chan rawFrame, 64), done: make(chan endCause, 1)}
	client, rc := net.Pipe()
	rb, browser := net.Pipe()
	p.client, p.browser = client, browser
	var h hooks
	if clientHook != nil {
		h.client = func(msg []byte, _ command) verdict {
			if out, ok := clientHook(msg); ok {
				return verdict{out: out}
			}
			return verdict{}
		}
	}
	if observe {
		h.browser = func(op opcode, msg []byte, size int64) {
			p.observedMu.Lock()
			defer p.observedMu.Unlock()
			p.observed = append(p.observed, string(msg))
			p.observedTrunc = append(p.observedTrunc, size > int64(len(msg)))
		}
	}
	rl := newRelay(relayConfig{maxMessage: maxMessage, writeTimeout: 5 * time.Second, closeWait: 100 * time.Millisecond},
		h, rc, bufio.NewReader(rc), rb, bufio.NewReader(rb))
	p.wg.Go(func() {
		p.done <- rl.run(func() (closeCode, string) { return closeInternalError, "browser connection lost" })
	})
	p.wg.Go(func() { collectFrames(client, p.toClient) })
	p.wg.Go(func() { collectFrames(browser, p.toBrowser) })
	t.Cleanup(func() {
		client.Close()
		browser.Close()
		p.wg.Wait()
	})
	return p
}

// collectFrames reads frames from c into ch until an error, then closes ch.
func collectFrames(c net.Conn, ch chan<- rawFrame) {
	defer close(ch)
	r := bufio.NewReader(c)
	for {
		h, raw, err := readHeader(r, 0, nil)
		if err != nil {
			return
		}
		f := rawFrame{h: h, raw: bytes.Clone(raw)}
		r.Discard(h.size)
		p := make([]byte, h.length)
		if _, err := io.ReadFull(r, p); err != nil {
			return
		}
		f.raw = append(f.raw, p...)
		if h.masked {
			mask(h.key, 0, p)
		}
		f.payload = p
		ch <- f
	}
}

func next(t *testing.T, ch <-chan rawFrame) rawFrame {
	t.Helper()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("connection closed; want a frame")
		}
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
	}
	return rawFrame{}
}

func write(t *testing.T, c net.Conn, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := c.Write(f); err != nil {
			t.Fatal(err)
		}
	}
}

// frameBytes encodes a frame; masked frames use a fixed key.
func frameBytes(fin bool, op opcode, masked bool, payload string) []byte {
	h := header{fin: fin, op: op, masked: masked, key: [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, length: int64(len(payload))}
	p := []byte(payload)
	if masked {
		mask(h.key, 0, p)
	}
	return append(appendHeader(nil, h), p...)
}

func TestClientHook(t *testing.T) {
	var seen []string
	hook := func(msg []byte) ([]byte, bool) {
		seen = append(seen, string(msg))
		if bytes.Contains(msg, []byte("rewrite-me")) {
			return []byte(`{"id":2,"rewritten":true}`), true
		}
		return nil, false
	}
	p := newPipeRelay(t, 1<<20, hook, false)

	// Unchanged single frames go through byte for byte.
	f1 := frameBytes(true, opText, true, `{"id":1}`)
	write(t, p.client, f1)
	if got := next(t, p.toBrowser); !bytes.Equal(got.raw, f1) {
		t.Errorf("forwarded % x; want % x", got.raw, f1)
	}
	// A fragmented message, with a ping between its frames, is replaced by one frame.
	ping := frameBytes(true, opPing, true, "p")
	write(t, p.client, frameBytes(false, opText, true, `{"id":2,`), ping, frameBytes(true, opContinuation, true, `"x":"rewrite-me"}`))
	if got := next(t, p.toBrowser); !bytes.Equal(got.raw, ping) {
		t.Errorf("first frame % x; want the ping", got.raw)
	}
	got := next(t, p.toBrowser)
	if !got.h.fin || got.h.op != opText || !got.h.masked || string(got.payload) != `{"id":2,"rewritten":true}` {
		t.Errorf("replacement = %+v %q; want one masked text frame", got.h, got.payload)
	}
	// Unchanged fragments are joined into one frame.
	write(t, p.client, frameBytes(false, opText, true, `{"id":`), frameBytes(true, opContinuation, true, `3}`))
	if got := next(t, p.toBrowser); !got.h.fin || string(got.payload) != `{"id":3}` {
		t.Errorf("joined = %+v %q", got.h, got.payload)
	}
	want := []string{`{"id":1}`, `{"id":2,"x":"rewrite-me"}`, `{"id":3}`}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("hook saw %q; want %q", seen, want)
	}
}

func TestBrowserObserver(t *testing.T) {
	p := newPipeRelay(t, 16, nil, true)
	frames := [][]byte{
		frameBytes(false, opText, false, `{"method":`),
		frameBytes(true, opPing, false, ""),
		frameBytes(true, opContinuation, false, `"X"}`),
		frameBytes(true, opText, false, `{"id":1,"result":{"long":true}}`), // over 16 bytes
	}
	write(t, p.browser, frames...)
	for i, want := range frames {
		if got := next(t, p.toClient); !bytes.Equal(got.raw, want) {
			t.Errorf("frame %d forwarded as % x; want % x", i, got.raw, want)
		}
	}
	p.observedMu.Lock()
	defer p.observedMu.Unlock()
	want := []string{`{"method":"X"}`, `{"id":1,"result"`}
	if strings.Join(p.observed, "|") != strings.Join(want, "|") || len(p.observedTrunc) != 2 || p.observedTrunc[0] || !p.observedTrunc[1] {
		t.Errorf("observed %q (truncated %v); want %q (truncated [false true])", p.observed, p.observedTrunc, want)
	}
}

func TestClientProtocolErrors(t *testing.T) {
	tests := []struct {
		name     string
		frame    []byte
		wantCode closeCode
	}{
		{name: "unmasked", frame: frameBytes(true, opText, false, "x"), wantCode: closeProtocolError},
		{name: "oversize frame", frame: frameBytes(true, opText, true, strings.Repeat("x", 65)), wantCode: closeTooBig},
		{name: "continuation first", frame: frameBytes(true, opContinuation, true, "x"), wantCode: closeProtocolError},
		{name: "deflate bit", frame: append([]byte{0xc1}, frameBytes(true, opText, true, "x")[1:]...), wantCode: closeProtocolError},
		// An inspecting relay forwards nothing it did not read: CDP is JSON text.
		{name: "binary", frame: frameBytes(true, opBinary, true, `{"id":1,"method":"Browser.close"}`), wantCode: closeUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeRelay(t, 64, func([]byte) ([]byte, bool) { return nil, false }, false)
			// The write may block until Cleanup closes the pipe, if the relay stops reading.
			p.wg.Go(func() { _, _ = p.client.Write(tt.frame) })
			f := next(t, p.toClient)
			code, _, err := parseClosePayload(f.payload)
			if f.h.op != opClose || err != nil || code != tt.wantCode {
				t.Errorf("got %+v code %d, %v; want close %d", f.h, code, err, tt.wantCode)
			}
			if c := <-p.done; c.code != tt.wantCode {
				t.Errorf("end cause %+v; want code %d", c, tt.wantCode)
			}
		})
	}
	// A fragmented text message over the limit in total.
	p := newPipeRelay(t, 64, func([]byte) ([]byte, bool) { return nil, false }, false)
	write(t, p.client, frameBytes(false, opText, true, strings.Repeat("a", 40)))
	p.wg.Go(func() { _, _ = p.client.Write(frameBytes(true, opContinuation, true, strings.Repeat("b", 40))) })
	if f := next(t, p.toClient); f.h.op != opClose {
		t.Fatalf("got %+v; want close", f.h)
	} else if code, _, _ := parseClosePayload(f.payload); code != closeTooBig {
		t.Errorf("close code %d; want 1009", code)
	}
}
