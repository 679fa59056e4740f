package browserd_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"github.com/google/go-cmp/cmp"
)

// jsonList is what Chromium's /json/list answered for a browser with two tabs.
const jsonList = `[ {
   "description": "", "id": "57595AC86FCF417D96CD0E9639B1232E", "title": "Marker", "type": "page",
   "url": "https://example.com/", "faviconUrl": "https://example.com/favicon.ico",
   "webSocketDebuggerUrl": "ws://127.0.0.1:9333/devtools/page/57595AC86FCF417D96CD0E9639B1232E"
}, {
   "id": "5FB846245E8438C4C054C9AAB86A530A", "title": "Omnibox Popup", "type": "browser_ui",
   "url": "chrome://omnibox-popup.top-chrome/"
}, {
   "id": "AAB846245E8438C4C054C9AAB86A530A", "title": "worker", "type": "service_worker", "url": "https://example.com/sw.js"
}, {
   "id": "C3DE89A215B8172001C8BDEC0690A06F", "title": "about:blank", "type": "page", "url": "about:blank"
} ]`

// liveEnv is a Manager whose fake browsers' DevTools endpoint is a test server.
type liveEnv struct {
	m         *bb.Manager
	signer    *bb.Signer
	projectID string
	other     string // another project
}

func newLiveEnv(t *testing.T) *liveEnv {
	t.Helper()
	devtools := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/json/list" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(jsonList))
	}))
	t.Cleanup(devtools.Close)
	db := sqlitetest.Open(t)
	p, _ := sqlitetest.Project(t, db, 5)
	other, _ := sqlitetest.Project(t, db, 5)
	signer := liveSigner(t, liveSecret)
	m, err := bb.NewManager(bb.ManagerConfig{
		Store: db, Signer: signer,
		Launcher: &chrometest.Launcher{DevToolsURL: "ws://" + devtools.Listener.Addr().String() + "/devtools/browser/b1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &liveEnv{m: m, signer: signer, projectID: p.ID, other: other.ID}
}

func (e *liveEnv) create(t *testing.T, timeout int) *bb.Session {
	t.Helper()
	s, err := e.m.CreateSession(t.Context(), e.projectID, bb.CreateSessionRequest{Timeout: timeout, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLiveViewPagesAndToken(t *testing.T) {
	e := newLiveEnv(t)
	s := e.create(t, 600)
	tests := []struct {
		name     string
		ttl      time.Duration
		readOnly bool
		want     time.Time // expiry, to the second
	}{
		{name: "until the session expires", want: s.ExpiresAt},
		{name: "expiresIn", ttl: 90 * time.Second, want: time.Now().Add(90 * time.Second)},
		{name: "read-only", ttl: time.Minute, readOnly: true, want: time.Now().Add(time.Minute)},
		{name: "capped", ttl: 100 * time.Hour, want: time.Now().Add(bb.MaxLiveViewTTL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lv, err := e.m.LiveView(t.Context(), e.projectID, s.ID, tt.ttl, tt.readOnly)
			if err != nil {
				t.Fatal(err)
			}
			want := []bb.LivePage{
				{ID: "57595AC86FCF417D96CD0E9639B1232E", URL: "https://example.com/", Title: "Marker", FaviconURL: "https://example.com/favicon.ico"},
				{ID: "C3DE89A215B8172001C8BDEC0690A06F", URL: "about:blank", Title: "about:blank"},
			}
			if diff := cmp.Diff(want, lv.Pages); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
			if d := lv.Expires.Sub(tt.want); d < -2*time.Second || d > 2*time.Second {
				t.Errorf("Expires = %v; want about %v", lv.Expires, tt.want)
			}
			g, err := e.signer.ParseLiveToken(lv.Token, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if g.SessionID != s.ID || !g.Expires.Equal(lv.Expires) || g.ReadOnly != tt.readOnly {
				t.Errorf("token grants %+v; want session %s until %v, read-only %v", g, s.ID, lv.Expires, tt.readOnly)
			}
			target, err := e.m.OpenLiveView(t.Context(), lv.Token)
			if err != nil {
				t.Fatal(err)
			}
			if target.SessionID != s.ID || target.ProjectID != e.projectID || !strings.HasSuffix(target.BrowserURL, "/devtools/browser/b1") {
				t.Errorf("OpenLiveView = %+v", target)
			}
		})
	}
}

func TestLiveViewErrors(t *testing.T) {
	e := newLiveEnv(t)
	s := e.create(t, 600)
	lv, err := e.m.LiveView(t.Context(), e.projectID, s.ID, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	target, err := e.m.OpenLiveView(t.Context(), lv.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.LiveView(t.Context(), e.other, s.ID, 0, false); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("LiveView of another project's session: %v; want not found", err)
	}
	if _, err := e.m.LiveView(t.Context(), e.projectID, bb.NewID(), 0, false); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("LiveView of an unknown session: %v; want not found", err)
	}
	expired := e.signer.LiveToken(bb.LiveGrant{SessionID: s.ID, Expires: time.Now().Add(-time.Second)})
	if _, err := e.m.OpenLiveView(t.Context(), expired); bb.CodeOf(err) != bb.CodeUnauthorized {
		t.Errorf("OpenLiveView(expired): %v; want unauthorized", err)
	}
	if _, err := e.m.OpenLiveView(t.Context(), lv.Token+"x"); bb.CodeOf(err) != bb.CodeUnauthorized {
		t.Errorf("OpenLiveView(altered): %v; want unauthorized", err)
	}
	unknown := e.signer.LiveToken(bb.LiveGrant{SessionID: bb.NewID(), Expires: time.Now().Add(time.Hour)})
	if _, err := e.m.OpenLiveView(t.Context(), unknown); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("OpenLiveView(unknown session): %v; want not found", err)
	}

	if _, err := e.m.ReleaseSession(t.Context(), e.projectID, s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-target.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("LiveTarget.Ended not closed after release")
	}
	if _, err := e.m.LiveView(t.Context(), e.projectID, s.ID, 0, false); bb.CodeOf(err) != bb.CodeGone {
		t.Errorf("LiveView of an ended session: %v; want gone", err)
	}
	if _, err := e.m.OpenLiveView(t.Context(), lv.Token); bb.CodeOf(err) != bb.CodeGone {
		t.Errorf("OpenLiveView of an ended session: %v; want gone", err)
	}
}

func TestLiveURLs(t *testing.T) {
	lv := &bb.LiveView{
		SessionID: "365d0f97-e049-4b2c-b5f0-acdc13aac623",
		Token:     "lv1.365d0f97-e049-4b2c-b5f0-acdc13aac623.1780000000.rw.MAC_-x",
		Pages:     []bb.LivePage{{ID: "P1", URL: "https://a/", Title: "A"}, {ID: "P2"}},
	}
	root := "/debug/" + lv.Token
	got := lv.URLs(url.URL{Scheme: "https", Host: "bb.example.com", Path: "/prefix/"})
	want := bb.LiveURLs{
		FullscreenURL: "https://bb.example.com/prefix" + root + "/view?sessionId=" + lv.SessionID,
		DevToolsURL:   "https://bb.example.com/prefix" + root + "/devtools/inspector.html?wss=bb.example.com/prefix" + root + "/devtools/page/P1",
		WebSocketURL:  "wss://bb.example.com/prefix" + root + "/devtools/browser",
		Pages: []bb.LivePageURLs{
			{LivePage: lv.Pages[0],
				FullscreenURL: "https://bb.example.com/prefix" + root + "/view?page=P1&sessionId=" + lv.SessionID,
				DevToolsURL:   "https://bb.example.com/prefix" + root + "/devtools/inspector.html?wss=bb.example.com/prefix" + root + "/devtools/page/P1"},
			{LivePage: lv.Pages[1],
				FullscreenURL: "https://bb.example.com/prefix" + root + "/view?page=P2&sessionId=" + lv.SessionID,
				DevToolsURL:   "https://bb.example.com/prefix" + root + "/devtools/inspector.html?wss=bb.example.com/prefix" + root + "/devtools/page/P2"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("URLs (-want +got):\n%s", diff)
	}

	plain := (&bb.LiveView{SessionID: lv.SessionID, Token: lv.Token}).URLs(url.URL{Scheme: "http", Host: "127.0.0.1:8080"})
	if want := "http://127.0.0.1:8080" + root + "/devtools/inspector.html?ws=127.0.0.1:8080" + root + "/devtools/browser"; plain.DevToolsURL != want {
		t.Errorf("DevToolsURL without pages = %q; want %q", plain.DevToolsURL, want)
	}
	if want := "ws://127.0.0.1:8080" + root + "/devtools/browser"; plain.WebSocketURL != want {
		t.Errorf("WebSocketURL = %q; want %q", plain.WebSocketURL, want)
	}
	if plain.Pages == nil {
		t.Error("Pages is nil; want [] in JSON")
	}
}
