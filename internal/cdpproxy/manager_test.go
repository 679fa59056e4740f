package cdpproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// managed is a Gateway in front of a real bb.Manager whose browsers are fakes (or real
// Chromium) and whose store is SQLite.
type managed struct {
	m         *bb.Manager
	g         *Gateway
	srv       *httptest.Server
	projectID string
	apiKey    string
}

func newManaged(t testing.TB, launcher bb.Launcher) *managed {
	t.Helper()
	db := sqlitetest.Open(t)
	p, key := sqlitetest.Project(t, db, 10)
	signer, err := bb.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bb.NewManager(bb.ManagerConfig{
		Store: db, Launcher: launcher, Signer: signer,
		Setup:           bb.SetupConfig{Proxies: chrometest.Proxies()},
		DisconnectGrace: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	g := New(Config{Sessions: m})
	g.closeWait = 500 * time.Millisecond
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil { // before the Manager: see Shutdown
			t.Errorf("Gateway.Shutdown: %v", err)
		}
		srv.Close()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
	})
	return &managed{m: m, g: g, srv: srv, projectID: p.ID, apiKey: key}
}

func (md *managed) create(t testing.TB, keepAlive bool) *bb.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := md.m.CreateSession(ctx, md.projectID, bb.CreateSessionRequest{KeepAlive: keepAlive})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

// connectURL is a session's connectUrl (signing key form).
func (md *managed) connectURL(id string) string {
	return "ws://" + md.srv.Listener.Addr().String() + "/?signingKey=" + url.QueryEscape(md.m.SigningKey(id))
}

func (md *managed) status(t testing.TB, id string) bb.SessionStatus {
	t.Helper()
	s, err := md.m.Session(context.Background(), md.projectID, id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Status
}

func TestManagerAuth(t *testing.T) {
	cdp := newFakeCDP(t)
	md := newManaged(t, &chrometest.Launcher{DevToolsURL: cdp.URL()})
	live := md.create(t, true)
	ended := md.create(t, true)
	if _, err := md.m.ReleaseSession(context.Background(), md.projectID, ended.ID); err != nil {
		t.Fatal(err)
	}
	base := "ws://" + md.srv.Listener.Addr().String() + "/?"
	tests := []struct {
		name       string
		url        string
		wantStatus int // 0: connects
	}{
		{name: "signing key", url: md.connectURL(live.ID)},
		{name: "legacy", url: base + "apiKey=" + md.apiKey + "&sessionId=" + live.ID},
		{name: "forged signing key", url: base + "signingKey=" + live.ID + ".forged", wantStatus: 401},
		{name: "wrong api key", url: base + "apiKey=bb_wrong&sessionId=" + live.ID, wantStatus: 401},
		{name: "unknown session", url: base + "apiKey=" + md.apiKey + "&sessionId=" + bb.NewID(), wantStatus: 404},
		{name: "ended session", url: md.connectURL(ended.ID), wantStatus: 410},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, tt.url, nil)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.CloseNow()
				roundTrip(t, c, websocket.MessageText, []byte(`{"id":1}`))
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("dial succeeded; want a refusal")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("dial error %v, response %v; want status %d", err, resp, tt.wantStatus)
			}
		})
	}
}

func TestManagerSessionEnds(t *testing.T) {
	tests := []struct {
		name       string
		end        func(md *managed, l *chrometest.Launcher, id string) error
		closeFirst bool // the client sends Browser.close before the end
		wantStatus bb.SessionStatus
		wantCode   websocket.StatusCode
		wantReason string
	}{
		{
			name: "released",
			end: func(md *managed, _ *chrometest.Launcher, id string) error {
				_, err := md.m.ReleaseSession(context.Background(), md.projectID, id)
				return err
			},
			wantStatus: bb.StatusCompleted, wantCode: websocket.StatusNormalClosure, wantReason: "session ended: COMPLETED (released)",
		},
		{
			name:       "crashed",
			end:        func(_ *managed, l *chrometest.Launcher, _ string) error { l.Browsers()[0].Crash(); return nil },
			wantStatus: bb.StatusError, wantCode: websocket.StatusInternalError, wantReason: "session ended: ERROR (browser process exited unexpectedly)",
		},
		{
			name:       "browser closed by the client",
			closeFirst: true,
			end:        func(_ *managed, l *chrometest.Launcher, _ string) error { l.Browsers()[0].Crash(); return nil },
			wantStatus: bb.StatusCompleted, wantCode: websocket.StatusNormalClosure, wantReason: "session ended: COMPLETED (browser closed by a client)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cdp := newFakeCDP(t)
			l := &chrometest.Launcher{DevToolsURL: cdp.URL()}
			md := newManaged(t, l)
			s := md.create(t, true)
			c := dial(t, md.connectURL(s.ID))
			if tt.closeFirst {
				roundTrip(t, c, websocket.MessageText, []byte(`{"id":1,"method":"Browser.close"}`))
			}
			if err := tt.end(md, l, s.ID); err != nil {
				t.Fatal(err)
			}
			code, reason := readClose(t, c)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Errorf("close = %d %q; want %d %q", code, reason, tt.wantCode, tt.wantReason)
			}
			waitFor(t, "status "+string(tt.wantStatus), func() bool { return md.status(t, s.ID) == tt.wantStatus })
		})
	}
}

// TestManagerLastClientLeaves checks that the gateway detaches: a session without
// keepAlive ends when its last client leaves; one with keepAlive does not.
func TestManagerLastClientLeaves(t *testing.T) {
	cdp := newFakeCDP(t)
	md := newManaged(t, &chrometest.Launcher{DevToolsURL: cdp.URL()})
	s := md.create(t, false)
	kept := md.create(t, true)
	for _, id := range []string{s.ID, kept.ID} {
		c1, c2 := dial(t, md.connectURL(id)), dial(t, md.connectURL(id))
		roundTrip(t, c1, websocket.MessageText, []byte(`{"id":1}`))
		if err := c1.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // 4× the disconnect grace
		if got := md.status(t, id); got != bb.StatusRunning {
			t.Fatalf("status with a client left = %s; want RUNNING", got)
		}
		roundTrip(t, c2, websocket.MessageText, []byte(`{"id":2}`))
		if err := c2.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "session without keepAlive completed", func() bool { return md.status(t, s.ID) == bb.StatusCompleted })
	time.Sleep(200 * time.Millisecond)
	if got := md.status(t, kept.ID); got != bb.StatusRunning {
		t.Errorf("keepAlive session status = %s; want RUNNING", got)
	}
	if n := len(md.g.Conns()); n != 0 {
		t.Errorf("%d live connections; want 0", n)
	}
	resp, err := http.Get(md.srv.URL + "/?signingKey=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET status = %d; want 426", resp.StatusCode)
	}
}
