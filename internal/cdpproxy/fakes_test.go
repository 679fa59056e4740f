package cdpproxy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
)

// fakeCDP is a websocket server standing in for Chromium's DevTools socket. It echoes
// every message, except the test commands:
//   - a message containing "Test.close" closes with 4000 "bye";
//   - "Test.drop" drops the TCP connection without a close frame;
//   - "Test.fragment" answers with a message in three frames.
type fakeCDP struct {
	srv      *httptest.Server
	conns    atomic.Int64 // upgrades accepted
	received chan []byte  // every message received, when not nil
	closes   chan websocket.StatusCode
}

func newFakeCDP(t testing.TB) *fakeCDP {
	t.Helper()
	f := &fakeCDP{received: make(chan []byte, 1024), closes: make(chan websocket.StatusCode, 64)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's browser-level DevTools URL.
func (f *fakeCDP) URL() string {
	return "ws://" + f.srv.Listener.Addr().String() + "/devtools/browser/fake"
}

func (f *fakeCDP) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	f.conns.Add(1)
	defer c.CloseNow()
	c.SetReadLimit(-1)
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			select {
			case f.closes <- websocket.CloseStatus(err):
			default:
			}
			return
		}
		if typ == websocket.MessageText && bytes.Contains(msg, []byte("Test.")) {
			select {
			case f.received <- msg:
			default:
			}
		}
		switch {
		case bytes.Contains(msg, []byte(`"Test.close"`)):
			c.Close(4000, "bye")
			return
		case bytes.Contains(msg, []byte(`"Test.drop"`)):
			return // CloseNow: no close frame
		case bytes.Contains(msg, []byte(`"Test.fragment"`)):
			wr, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				return
			}
			for _, part := range []string{`{"id":1,`, `"result":`, `{"fragmented":true}}`} {
				if _, err := wr.Write([]byte(part)); err != nil {
					return
				}
			}
			if err := wr.Close(); err != nil {
				return
			}
		default:
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}
}

// fakeAttachment records what the gateway does with an attachment.
type fakeAttachment struct {
	ended    chan struct{}
	endOnce  sync.Once
	mu       sync.Mutex
	status   bb.SessionStatus
	reason   string
	closing  atomic.Int64
	detached atomic.Int64
}

func newFakeAttachment() *fakeAttachment { return &fakeAttachment{ended: make(chan struct{})} }

func (a *fakeAttachment) Ended() <-chan struct{} { return a.ended }
func (a *fakeAttachment) EndReason() (bb.SessionStatus, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.reason
}
func (a *fakeAttachment) BrowserClosing() { a.closing.Add(1) }
func (a *fakeAttachment) Detach()         { a.detached.Add(1) }

// end ends the fake session.
func (a *fakeAttachment) end(status bb.SessionStatus, reason string) {
	a.endOnce.Do(func() {
		a.mu.Lock()
		a.status, a.reason = status, reason
		a.mu.Unlock()
		close(a.ended)
	})
}

// harness is a Gateway relaying to a fakeCDP, with a fake attachment per connection.
type harness struct {
	g   *Gateway
	srv *httptest.Server
	cdp *fakeCDP

	mu   sync.Mutex
	atts []*fakeAttachment
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{cdp: newFakeCDP(t)}
	h.g = New(cfg)
	h.g.closeWait = 500 * time.Millisecond
	h.g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		if c.SigningKey != "good" {
			return attached{}, bb.Errorf(bb.CodeUnauthorized, "invalid signingKey")
		}
		a := newFakeAttachment()
		h.mu.Lock()
		h.atts = append(h.atts, a)
		h.mu.Unlock()
		return attached{sessionID: "sess", browserURL: h.cdp.URL(), att: a}, nil
	}
	h.srv = newServer(t, h.g)
	return h
}

// newServer serves g; cleanup closes g, then the server.
func newServer(t testing.TB, g *Gateway) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Gateway.Close: %v", err)
		}
		srv.Close()
	})
	return srv
}

// URL is the gateway's connect URL with a good signing key.
func (h *harness) URL() string {
	return "ws://" + h.srv.Listener.Addr().String() + "/?signingKey=good"
}

func (h *harness) attachment(i int) *fakeAttachment {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.atts[i]
}

// dial connects a coder/websocket client to url, with a read limit fit for CDP.
func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial %s: %v", strings.Split(url, "?")[0], err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("upgrade negotiated extensions %q; want none", ext)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
