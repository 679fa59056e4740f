package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// LiveView completes fakeService (respond_test.go) for the sessionService interface.
func (f fakeService) LiveView(context.Context, string, string, time.Duration, bool) (*bb.LiveView, error) {
	return nil, f.err
}

// newDebugEnv is newEnv with fake browsers whose DevTools endpoint lists two pages.
func newDebugEnv(t *testing.T, cfg Config) (*env, *bb.Signer) {
	t.Helper()
	devtools := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/json/list" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`[{"id":"57595AC86FCF417D96CD0E9639B1232E","type":"page","title":"Marker","url":"https://example.com/","faviconUrl":"https://example.com/favicon.ico"},
			{"id":"5FB846245E8438C4C054C9AAB86A530A","type":"browser_ui","title":"Omnibox Popup","url":"chrome://omnibox-popup.top-chrome/"},
			{"id":"C3DE89A215B8172001C8BDEC0690A06F","type":"page","title":"about:blank","url":"about:blank"}]`))
	}))
	t.Cleanup(devtools.Close)
	db := sqlitetest.Open(t)
	signer, err := bb.NewSigner([]byte(rand.Text() + rand.Text()))
	if err != nil {
		t.Fatal(err)
	}
	launcher := &chrometest.Launcher{DevToolsURL: "ws://" + devtools.Listener.Addr().String() + "/devtools/browser/b1"}
	mgr, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: launcher, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mgr.Close(context.Background()); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	e := &env{mgr: mgr, logs: new(logBuffer)}
	e.project, e.key = sqlitetest.Project(t, db, 5)
	e.other, e.otherKey = sqlitetest.Project(t, db, 5)
	cfg.Sessions = mgr
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e, signer
}

func TestDebugURLs(t *testing.T) {
	e, signer := newDebugEnv(t, Config{PublicURL: "https://bb.example.com/prefix"})
	id := e.create(t, `{"keepAlive":true}`)
	w := e.do(t, request{method: "GET", path: "/v1/sessions/" + id + "/debug", key: e.key})
	if w.Code != http.StatusOK {
		t.Fatalf("GET debug = %d %s", w.Code, w.Body)
	}
	got := decodeAny(t, w)
	live := got.(map[string]any)
	full, _ := live["debuggerFullscreenUrl"].(string)
	_, rest, _ := strings.Cut(full, "/debug/")
	token, _, _ := strings.Cut(rest, "/")
	g, err := signer.ParseLiveToken(token, time.Now())
	if err != nil {
		t.Fatalf("token in %q: %v", full, err)
	}
	if g.SessionID != id || g.ReadOnly {
		t.Errorf("token grants %+v; want read-write on %s", g, id)
	}
	if strings.Contains(w.Body.String(), e.key) {
		t.Error("the response carries the API key")
	}
	checkGolden(t, "debug", normalize(t, got, map[string]string{token: "{token}", id: "{id}"}))
}

func TestDebugQuery(t *testing.T) {
	e, signer := newDebugEnv(t, Config{})
	id := e.create(t, `{"keepAlive":true}`)
	tests := []struct {
		query    string
		wantCode int
		wantTTL  time.Duration // 0: until the session expires
		wantRO   bool
	}{
		{query: "", wantCode: 200},
		{query: "?expiresIn=", wantCode: 200},
		{query: "?expiresIn=60", wantCode: 200, wantTTL: time.Minute},
		{query: "?expiresIn=999999", wantCode: 200, wantTTL: bb.MaxLiveViewTTL},
		{query: "?readOnly=true&expiresIn=120", wantCode: 200, wantTTL: 2 * time.Minute, wantRO: true},
		{query: "?readOnly=false", wantCode: 200},
		{query: "?expiresIn=0", wantCode: 400},
		{query: "?expiresIn=-5", wantCode: 400},
		{query: "?expiresIn=1.5", wantCode: 400},
		{query: "?expiresIn=abc", wantCode: 400},
		{query: "?readOnly=yes", wantCode: 400},
		{query: "?readOnly=1", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := e.do(t, request{method: "GET", path: "/v1/sessions/" + id + "/debug" + tt.query, key: e.key})
			if w.Code != tt.wantCode {
				t.Fatalf("GET debug%s = %d %s; want %d", tt.query, w.Code, w.Body, tt.wantCode)
			}
			if w.Code != 200 {
				return
			}
			v := decodeAny(t, w).(map[string]any)
			_, rest, _ := strings.Cut(v["wsUrl"].(string), "/debug/")
			token, _, _ := strings.Cut(rest, "/")
			g, err := signer.ParseLiveToken(token, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := time.Now().Add(tt.wantTTL)
			if tt.wantTTL == 0 {
				want = time.Now().Add(300 * time.Second) // the project's default timeout
			}
			if d := g.Expires.Sub(want); d < -3*time.Second || d > 3*time.Second {
				t.Errorf("token expires %v; want about %v", g.Expires, want)
			}
			if g.ReadOnly != tt.wantRO {
				t.Errorf("read-only = %v; want %v", g.ReadOnly, tt.wantRO)
			}
		})
	}
}

func TestDebugErrors(t *testing.T) {
	e, _ := newDebugEnv(t, Config{})
	id := e.create(t, `{"keepAlive":true}`)
	e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + id + "/debug", key: e.otherKey}, http.StatusNotFound)
	e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + bb.NewID() + "/debug", key: e.key}, http.StatusNotFound)
	e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + id + "/debug"}, http.StatusUnauthorized)
	e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + id + "/debug", key: e.key}, http.StatusMethodNotAllowed)
	e.mustDo(t, request{method: "POST", path: "/v1/sessions/" + id, key: e.key, body: `{"status":"REQUEST_RELEASE"}`}, http.StatusOK)
	v := e.mustDo(t, request{method: "GET", path: "/v1/sessions/" + id + "/debug", key: e.key}, http.StatusGone)
	if msg, _ := v["message"].(string); !strings.Contains(msg, "has ended") {
		t.Errorf("410 message = %q", msg)
	}
}
