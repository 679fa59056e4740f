package browserd

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MaxLiveViewTTL caps the lifetime of live view URLs (spec §3.5: 21600 s).
const MaxLiveViewTTL = MaxTimeout * time.Second

// LivePage is one open tab of a session's browser (spec §2.5, Page).
type LivePage struct {
	ID         string // CDP target id
	URL        string
	Title      string
	FaviconURL string // "" when the page has none (yet)
}

// LiveView is a token for the live URLs of a running session and the session's open
// pages: what GET /v1/sessions/{id}/debug answers, before URLs are built.
type LiveView struct {
	SessionID string
	Token     string
	Expires   time.Time
	Pages     []LivePage
}

// LiveView returns a live view token and the open pages of a running session of the
// project. The token lives for ttl, or until the session expires when ttl is 0, and at
// most MaxLiveViewTTL. Errors: CodeNotFound, CodeGone (the session has ended),
// CodeUnavailable (its browser does not run on this node).
func (m *Manager) LiveView(ctx context.Context, projectID, id string, ttl time.Duration, readOnly bool) (*LiveView, error) {
	s, err := m.session(ctx, projectID, id) // the answer has no usage
	if err != nil {
		return nil, err
	}
	if s.Status.Terminal() {
		return nil, endedError(s)
	}
	m.mu.Lock()
	ls := m.live[id]
	ending := ls != nil && ls.ending
	m.mu.Unlock()
	switch {
	case ending:
		return nil, Errorf(CodeGone, "Session %s has ended", id)
	case ls == nil:
		return nil, Errorf(CodeUnavailable, "Session %s is not running on this node", id)
	}
	now := time.Now()
	exp := s.ExpiresAt
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	if limit := now.Add(MaxLiveViewTTL); exp.After(limit) {
		exp = limit
	}
	if exp.Unix() <= now.Unix() { // about to time out: the token still needs a future second
		exp = now.Add(time.Second)
	}
	pages, err := ls.browser.Pages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pages of session %s: %w", id, err)
	}
	g := LiveGrant{SessionID: id, Expires: time.Unix(exp.Unix(), 0).UTC(), ReadOnly: readOnly}
	return &LiveView{SessionID: id, Token: m.cfg.Signer.LiveToken(g), Expires: g.Expires, Pages: pages}, nil
}

func endedError(s *Session) error {
	return Errorf(CodeGone, "Session %s has ended (%s); live URLs exist only while it runs", s.ID, s.Status)
}

// LiveTarget is a running session opened with a live view token.
type LiveTarget struct {
	LiveGrant
	ProjectID string
	// BrowserURL is the session's browser-level DevTools websocket
	// (ws://127.0.0.1:PORT/devtools/browser/ID); its host serves /json and /devtools.
	BrowserURL string
	ended      <-chan struct{}
	closing    func()
}

// Ended is closed when the session ends.
func (t *LiveTarget) Ended() <-chan struct{} { return t.ended }

// BrowserClosing records that the live view's DevTools sent Browser.close: the browser
// exit that follows ends the session as COMPLETED, as for a CDP client
// (Attachment.BrowserClosing).
func (t *LiveTarget) BrowserClosing() {
	if t.closing != nil {
		t.closing()
	}
}

// OpenLiveView checks a live view token and returns its running session. Errors:
// CodeUnauthorized (altered or expired token), CodeNotFound, CodeGone (the session has
// ended), CodeUnavailable (not running on this node). Live views are not CDP clients of
// the session: they neither keep it alive nor end it (docs/COMPATIBILITY.md).
func (m *Manager) OpenLiveView(ctx context.Context, token string) (*LiveTarget, error) {
	g, err := m.cfg.Signer.ParseLiveToken(token, time.Now())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	ls := m.live[g.SessionID]
	if ls != nil && !ls.ending {
		t := &LiveTarget{LiveGrant: g, ProjectID: ls.projectID, BrowserURL: ls.browser.DevToolsURL(), ended: ls.ended,
			closing: func() {
				m.mu.Lock()
				ls.closeRequested = true
				m.mu.Unlock()
			}}
		m.mu.Unlock()
		return t, nil
	}
	m.mu.Unlock()
	s, err := m.store.Session(ctx, g.SessionID)
	switch {
	case CodeOf(err) == CodeNotFound:
		return nil, Errorf(CodeNotFound, "Session not found")
	case err != nil:
		return nil, err
	case s.Status.Terminal() || ls != nil: // ls != nil: ending, and the store may not say so yet
		return nil, Errorf(CodeGone, "Session %s has ended", s.ID)
	}
	return nil, Errorf(CodeUnavailable, "Session %s is not running on this node", s.ID)
}

// LiveURLs are the URLs of a live view (spec §2.5, §4.3; docs/COMPATIBILITY.md):
//
//	debuggerFullscreenUrl  <base>/debug/<token>/view?sessionId=<id>[&page=<target>]
//	debuggerUrl            <base>/debug/<token>/devtools/inspector.html?ws=<host>/…/debug/<token>/devtools/page/<target>
//	wsUrl                  ws://<host>/…/debug/<token>/devtools/browser
//
// Pages come most recently activated first; the session-level debuggerUrl opens DevTools
// on the first of them, the tab in front.
type LiveURLs struct {
	FullscreenURL string
	DevToolsURL   string
	WebSocketURL  string
	Pages         []LivePageURLs
}

// LivePageURLs are a page and its own live URLs.
type LivePageURLs struct {
	LivePage
	FullscreenURL string
	DevToolsURL   string
}

// LiveViewPrefix is the path, after the public URL's own, under which live views are
// served; the token follows it.
const LiveViewPrefix = "/debug/"

// URLs returns the live URLs of v on base: the scheme, host and optional path prefix
// clients reach the server at.
func (v *LiveView) URLs(base url.URL) LiveURLs {
	root := strings.TrimRight(base.Path, "/") + LiveViewPrefix + v.Token
	wsScheme, wsParam := "ws", "ws"
	if base.Scheme == "https" {
		wsScheme, wsParam = "wss", "wss"
	}
	view := func(page string) string {
		q := url.Values{"sessionId": {v.SessionID}}
		if page != "" {
			q.Set("page", page)
		}
		u := url.URL{Scheme: base.Scheme, Host: base.Host, Path: root + "/view", RawQuery: q.Encode()}
		return u.String()
	}
	devtools := func(target string) string {
		// DevTools takes host and path without a scheme in ws= (or wss=), unescaped.
		u := url.URL{Scheme: base.Scheme, Host: base.Host, Path: root + "/devtools/inspector.html",
			RawQuery: wsParam + "=" + base.Host + root + "/devtools/" + target}
		return u.String()
	}
	ws := url.URL{Scheme: wsScheme, Host: base.Host, Path: root + "/devtools/browser"}
	out := LiveURLs{FullscreenURL: view(""), WebSocketURL: ws.String(), Pages: make([]LivePageURLs, 0, len(v.Pages))}
	for _, p := range v.Pages {
		out.Pages = append(out.Pages, LivePageURLs{LivePage: p, FullscreenURL: view(p.ID), DevToolsURL: devtools("page/" + p.ID)})
	}
	if len(v.Pages) > 0 {
		out.DevToolsURL = out.Pages[0].DevToolsURL
	} else {
		out.DevToolsURL = devtools("browser")
	}
	return out
}
