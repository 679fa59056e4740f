package cdpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
)

// roundTrip writes msg and reads the answer.
func roundTrip(t testing.TB, c *websocket.Conn, typ websocket.MessageType, msg []byte) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return gt, got
}

// readClose reads until the connection closes and returns the close frame's code and
// reason.
func readClose(t testing.TB, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		ce, ok := errors.AsType[websocket.CloseError](err)
		if !ok {
			t.Fatalf("read ended with %v; want a close frame", err)
		}
		return ce.Code, ce.Reason
	}
}

func TestRelayMessages(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = 'a' + byte(rand.IntN(26))
	}
	// The gateway relays JSON objects only (scan.go); large ones stream.
	bigText := append(append([]byte(`{"id":7,"method":"Runtime.evaluate","params":{"expression":"`), big...), `"}}`...)
	tests := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{name: "small text", typ: websocket.MessageText, msg: []byte(`{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}`)},
		{name: "empty object", typ: websocket.MessageText, msg: []byte(`{}`)},
		{name: "16-bit length", typ: websocket.MessageText, msg: fmt.Appendf(nil, `{"id":2,"params":{"s":"%s"}}`, bytes.Repeat([]byte("x"), 40000))},

		{name: "8 MB text", typ: websocket.MessageText, msg: bigText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, got := roundTrip(t, c, tt.typ, tt.msg)
			if typ != tt.typ || !bytes.Equal(got, tt.msg) {
				t.Errorf("echo = %v %d bytes; want %v %d bytes (equal: %t)", typ, len(got), tt.typ, len(tt.msg), bytes.Equal(got, tt.msg))
			}
		})
	}
	st := h.g.Stats()
	if st.ClientBytes < 8<<20 || st.BrowserBytes < 8<<20 {
		t.Errorf("Stats = %+v; want ≥ 8 MiB each way", st)
	}
	if conns := h.g.Conns(); len(conns) != 1 || conns[0].SessionID != "sess" || conns[0].BrowserBytes == 0 {
		t.Errorf("Conns = %+v; want one connection of session sess with bytes", conns)
	}
}

func TestRelayFragmented(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Client → browser: a text message in three frames, with a ping in between.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{`{"id":7,`, `"method":"Test.echo",`, `"params":{}}`}
	for i, p := range parts {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// coder/websocket can't ping mid-message from this goroutine; the
			// frames still reach the relay one by one.
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := parts[0] + parts[1] + parts[2]
	select {
	case got := <-h.cdp.received:
		if string(got) != want {
			t.Errorf("browser received %q; want %q", got, want)
		}
	case <-ctx.Done():
		t.Fatal("browser received nothing")
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != want {
		t.Fatalf("echo = %q, %v; want %q", got, err, want)
	}

	// Browser → client: a message in three frames.
	_, got := roundTrip(t, c, websocket.MessageText, []byte(`{"id":8,"method":"Test.fragment"}`))
	if want := `{"id":1,"result":{"fragmented":true}}`; string(got) != want {
		t.Errorf("fragmented answer = %q; want %q", got, want)
	}
}

func TestRelayPing(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.CloseNow()
	wg.Go(func() {
		for { // coder/websocket handles the pong while a read is in progress
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	})
	for i := range 3 {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
}

func TestRelayClientCloses(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	roundTrip(t, c, websocket.MessageText, []byte(`{"id":1}`))
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case code := <-h.cdp.closes:
		if code != websocket.StatusNormalClosure {
			t.Errorf("browser saw close %d; want 1000", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("browser saw no close")
	}
	waitFor(t, "detach", func() bool { return h.attachment(0).detached.Load() == 1 })
	waitFor(t, "no live connections", func() bool { return len(h.g.Conns()) == 0 })
}

func TestRelayBrowserCloses(t *testing.T) {
	tests := []struct {
		name       string
		cmd        string
		wantCode   websocket.StatusCode
		wantReason string
	}{
		{name: "close frame passes through", cmd: "Test.close", wantCode: 4000, wantReason: "bye"},
		{name: "dropped connection", cmd: "Test.drop", wantCode: websocket.StatusInternalError, wantReason: "browser connection lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := dial(t, h.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"id":1,"method":%q}`, tt.cmd)); err != nil {
				t.Fatal(err)
			}
			code, reason := readClose(t, c)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Errorf("close = %d %q; want %d %q", code, reason, tt.wantCode, tt.wantReason)
			}
			waitFor(t, "detach", func() bool { return h.attachment(0).detached.Load() == 1 })
		})
	}
}

func TestRelayMultipleClients(t *testing.T) {
	h := newHarness(t, Config{})
	var wg sync.WaitGroup
	for i := range 5 {
		c := dial(t, h.URL())
		wg.Go(func() {
			for j := range 50 {
				msg := fmt.Appendf(nil, `{"id":%d,"method":"Runtime.evaluate","params":{"client":%d}}`, j, i)
				if _, got := roundTrip(t, c, websocket.MessageText, msg); !bytes.Equal(got, msg) {
					t.Errorf("client %d: echo %q; want %q", i, got, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(h.g.Conns()); n != 5 {
		t.Errorf("%d live connections; want 5", n)
	}
}

func TestRelayBrowserClose(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	// Mentions of Browser.close that are not the command do not count.
	for _, msg := range []string{
		`{"id":1,"method":"Runtime.evaluate","params":{"expression":"\"Browser.close\""}}`,
		`{"id":2,"method":"Browser.closeX"}`,
		`{"id":4,"params":{"method":"Browser.close"}}`,
	} {
		roundTrip(t, c, websocket.MessageText, []byte(msg))
	}
	if n := h.attachment(0).closing.Load(); n != 0 {
		t.Fatalf("BrowserClosing called %d times before Browser.close", n)
	}
	msg := []byte(`{"id":3,"method":"Browser.close","params":{}}`)
	if _, got := roundTrip(t, c, websocket.MessageText, msg); !bytes.Equal(got, msg) {
		t.Errorf("echo = %q; want %q", got, msg)
	}
	if n := h.attachment(0).closing.Load(); n != 1 {
		t.Errorf("BrowserClosing called %d times; want 1", n)
	}
}

func TestRelaySessionEnds(t *testing.T) {
	tests := []struct {
		name       string
		status     bb.SessionStatus
		reason     string
		wantCode   websocket.StatusCode
		wantReason string
	}{
		{name: "timed out", status: bb.StatusTimedOut, reason: "timeout reached", wantCode: websocket.StatusNormalClosure, wantReason: "session ended: TIMED_OUT (timeout reached)"},
		{name: "released", status: bb.StatusCompleted, reason: "released", wantCode: websocket.StatusNormalClosure, wantReason: "session ended: COMPLETED (released)"},
		{name: "crashed", status: bb.StatusError, reason: "browser process exited unexpectedly", wantCode: websocket.StatusInternalError, wantReason: "session ended: ERROR (browser process exited unexpectedly)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := dial(t, h.URL())
			roundTrip(t, c, websocket.MessageText, []byte(`{"id":1}`))
			h.attachment(0).end(tt.status, tt.reason)
			code, reason := readClose(t, c)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Errorf("close = %d %q; want %d %q", code, reason, tt.wantCode, tt.wantReason)
			}
			waitFor(t, "detach", func() bool { return h.attachment(0).detached.Load() == 1 })
		})
	}
}

func TestRelayShutdown(t *testing.T) {
	h := newHarness(t, Config{})
	c := dial(t, h.URL())
	roundTrip(t, c, websocket.MessageText, []byte(`{"id":1}`))
	done := make(chan error, 1)
	go func() { done <- h.g.Shutdown(context.Background()) }()
	code, reason := readClose(t, c)
	if code != websocket.StatusGoingAway || reason != "server shutting down" {
		t.Errorf("close = %d %q; want 1001 \"server shutting down\"", code, reason)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if n := h.attachment(0).detached.Load(); n != 1 {
		t.Errorf("Detach called %d times; want 1", n)
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := newHarness(t, Config{IdleTimeout: idle})
	c := dial(t, h.URL())
	// Activity keeps the connection open past the timeout…
	start := time.Now()
	var quiet time.Time
	for time.Since(start) < 2*idle {
		roundTrip(t, c, websocket.MessageText, []byte(`{"id":1}`))
		quiet = time.Now()
		time.Sleep(idle / 5)
	}
	// … and silence closes it.
	code, reason := readClose(t, c)
	if code != websocket.StatusNormalClosure || reason != "idle timeout" {
		t.Errorf("close = %d %q; want 1000 \"idle timeout\"", code, reason)
	}
	if d := time.Since(quiet); d < idle*8/10 {
		t.Errorf("closed after %v of silence; want about %v", d, idle)
	}
	waitFor(t, "detach", func() bool { return h.attachment(0).detached.Load() == 1 })
}
