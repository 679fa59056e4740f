package liveview

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// testEnv is a liveview Server over a real Manager (SQLite store) and a launcher: the
// fake one, whose browsers are a fakeBrowser, or real Chromium.
type testEnv struct {
	m         *bb.Manager
	srv       *Server
	hs        *httptest.Server
	projectID string
	key       string
	otherKey  string
	api       *recordingAPI
}

// recordingAPI stands in for the REST API: it records what the dashboard asks of it.
type recordingAPI struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (a *recordingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.reqs = append(a.reqs, r)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[]`))
}

func (a *recordingAPI) last() *http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		return nil
	}
	return a.reqs[len(a.reqs)-1]
}

func newTestEnv(t testing.TB, launcher bb.Launcher) *testEnv {
	t.Helper()
	db := sqlitetest.Open(t)
	p, key := sqlitetest.Project(t, db, 10)
	_, otherKey := sqlitetest.Project(t, db, 10)
	signer, err := bb.NewSigner([]byte("a liveview test secret of 32 bytes at least"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: launcher, Signer: signer, Logger: logger,
		Setup: bb.SetupConfig{Proxies: chrometest.Proxies()}})
	if err != nil {
		t.Fatal(err)
	}
	api := &recordingAPI{}
	srv, err := New(Config{Sessions: m, API: api, Logger: logger, DevTools: pumpRelay{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		hs.Close()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
	})
	return &testEnv{m: m, srv: srv, hs: hs, projectID: p.ID, key: key, otherKey: otherKey, api: api}
}

func (e *testEnv) create(t testing.TB) *bb.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.m.CreateSession(ctx, e.projectID, bb.CreateSessionRequest{KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token returns a live view token of a running session.
func (e *testEnv) token(t testing.TB, id string, readOnly bool) string {
	t.Helper()
	lv, err := e.m.LiveView(t.Context(), e.projectID, id, 0, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return lv.Token
}

func (e *testEnv) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(e.hs.URL, "http") + path
}

// fakeBrowser is a browser's DevTools endpoint: /json/list and a browser-level CDP
// websocket that answers what a live view asks and sends screencast frames on demand.
type fakeBrowser struct {
	t   testing.TB
	hs  *httptest.Server
	mu  sync.Mutex
	cmd []cdpCommand // every command received
	ws  *websocket.Conn
	// casting is the session of the running screencast, "" when none.
	casting string
	conns   int // connections open
	hidden  map[string]bool
}

type cdpCommand struct {
	ID        int64           `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
}

const (
	fakePage1 = "AAAA0000AAAA0000AAAA0000AAAA0001"
	fakePage2 = "AAAA0000AAAA0000AAAA0000AAAA0002"
)

func newFakeBrowser(t testing.TB) *fakeBrowser {
	fb := &fakeBrowser{t: t, hidden: map[string]bool{}}
	fb.hs = httptest.NewServer(http.HandlerFunc(fb.serve))
	t.Cleanup(fb.hs.Close)
	return fb
}

func (fb *fakeBrowser) url() string {
	return "ws" + strings.TrimPrefix(fb.hs.URL, "http") + "/devtools/browser/fake"
}

func (fb *fakeBrowser) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/json/list" {
		w.Write([]byte(`[{"id":"` + fakePage2 + `","type":"page","url":"https://two/","title":"Two"},
			{"id":"` + fakePage1 + `","type":"page","url":"https://one/","title":"One"}]`))
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	fb.mu.Lock()
	fb.ws = ws
	fb.conns++
	fb.mu.Unlock()
	defer func() {
		fb.mu.Lock()
		fb.conns--
		fb.casting = ""
		fb.mu.Unlock()
	}()
	for {
		_, b, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		var c cdpCommand
		if err := json.Unmarshal(b, &c); err != nil {
			fb.t.Errorf("fake browser: bad command %s", b)
			return
		}
		fb.mu.Lock()
		fb.cmd = append(fb.cmd, c)
		result := `{}`
		switch c.Method {
		case "Target.getTargets":
			result = `{"targetInfos":[{"targetId":"` + fakePage1 + `","type":"page","url":"https://one/","title":"One"},
				{"targetId":"` + fakePage2 + `","type":"page","url":"https://two/","title":"Two"},
				{"targetId":"BBBB","type":"service_worker","url":"https://one/sw.js","title":""}]}`
		case "Target.attachToTarget":
			var p struct {
				TargetID string `json:"targetId"`
			}
			json.Unmarshal(c.Params, &p)
			result = `{"sessionId":"S-` + p.TargetID + `"}`
		case "Runtime.evaluate":
			vis := "visible"
			if fb.hidden[strings.TrimPrefix(c.SessionID, "S-")] {
				vis = "hidden"
			}
			result = `{"result":{"type":"string","value":"` + vis + `"}}`
		case "Page.startScreencast":
			fb.casting = c.SessionID
		case "Page.stopScreencast":
			fb.casting = ""
		}
		fb.mu.Unlock()
		reply := `{"id":` + itoa(c.ID) + `,"result":` + result
		if c.SessionID != "" {
			reply += `,"sessionId":"` + c.SessionID + `"`
		}
		if err := ws.Write(context.Background(), websocket.MessageText, []byte(reply+"}")); err != nil {
			return
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// event sends a CDP event to the live view's connection.
func (fb *fakeBrowser) event(method, sessionID, params string) {
	fb.t.Helper()
	fb.mu.Lock()
	ws := fb.ws
	fb.mu.Unlock()
	msg := `{"method":"` + method + `","params":` + params
	if sessionID != "" {
		msg += `,"sessionId":"` + sessionID + `"`
	}
	if err := ws.Write(context.Background(), websocket.MessageText, []byte(msg+"}")); err != nil {
		fb.t.Errorf("fake browser: send %s: %v", method, err)
	}
}

// frame sends screencast frame n (its ack id) of the running screencast.
func (fb *fakeBrowser) frame(n int) {
	fb.t.Helper()
	// "/9j/4AAQ" is the start of a JPEG in base64; the server does not decode images.
	fb.frameData(n, "/9j/4AAQ")
}

// frameData sends frame n with base64 image data.
func (fb *fakeBrowser) frameData(n int, data string) {
	fb.t.Helper()
	fb.mu.Lock()
	s := fb.casting
	fb.mu.Unlock()
	if s == "" {
		fb.t.Fatal("fake browser: no screencast running")
	}
	fb.event("Page.screencastFrame", s, `{"data":"`+data+`","sessionId":`+itoa(int64(n))+
		`,"metadata":{"offsetTop":0,"pageScaleFactor":1,"deviceWidth":1280,"deviceHeight":720,"scrollOffsetX":0,"scrollOffsetY":0}}`)
}

// commands returns the commands received with method.
func (fb *fakeBrowser) commands(method string) []cdpCommand {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	var out []cdpCommand
	for _, c := range fb.cmd {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (fb *fakeBrowser) state() (casting string, conns int) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.casting, fb.conns
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeEnv is a testEnv whose sessions' browsers are one fakeBrowser.
func fakeEnv(t testing.TB) (*testEnv, *fakeBrowser) {
	fb := newFakeBrowser(t)
	return newTestEnv(t, &chrometest.Launcher{DevToolsURL: fb.url()}), fb
}

// pumpRelay stands in for the CDP gateway's DevTools relay (internal/server wires
// *cdpproxy.Gateway, whose rules are tested there): it pumps messages as they are.
type pumpRelay struct{}

func (pumpRelay) RelayDevTools(w http.ResponseWriter, r *http.Request, t *bb.LiveTarget, url string, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	browser, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer browser.CloseNow()
	client, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer client.CloseNow()
	browser.SetReadLimit(-1)
	client.SetReadLimit(-1)
	pump := func(dst, src *websocket.Conn) {
		defer cancel()
		for {
			typ, b, err := src.Read(ctx)
			if err != nil || dst.Write(ctx, typ, b) != nil {
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { pump(client, browser) }) // both end with ctx or their connections
	wg.Go(func() { pump(browser, client) })
	select {
	case <-ctx.Done():
	case <-t.Ended():
		client.Close(closeEnded, "session ended")
	case <-done:
	}
	cancel()
	client.CloseNow()
	browser.CloseNow()
	wg.Wait()
}
