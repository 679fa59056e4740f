package liveview

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// handleDevTools serves Chromium's own DevTools frontend from the session's browser
// (GET …/devtools/inspector.html and its files) and relays its websocket
// (…/devtools/page/<target> or …/devtools/browser) to the browser. Read-only tokens
// get 403: DevTools can change anything.
func (s *Server) handleDevTools(w http.ResponseWriter, r *http.Request) {
	t, ok := s.open(w, r)
	if !ok {
		return
	}
	if t.ReadOnly {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "this live view is read-only: DevTools is not available"))
		return
	}
	path := r.PathValue("path")
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.relayDevTools(w, r, t, path)
		return
	}
	if path == "" || strings.Contains(path, "..") || strings.HasPrefix(path, "/") || strings.Contains(path, "//") {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "no such DevTools file"))
		return
	}
	base, err := cdp.HTTPBase(t.BrowserURL)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &url.URL{Scheme: target.Scheme, Host: target.Host, Path: "/devtools/" + path}
			// Chromium answers only requests whose Host is an IP or localhost.
			pr.Out.Host = target.Host
			// Nothing of the viewer's goes to the browser: not its cookies (a dashboard
			// sign-in) nor where it came from.
			pr.Out.Header = http.Header{"Accept": pr.In.Header["Accept"], "Accept-Encoding": pr.In.Header["Accept-Encoding"]}
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("Set-Cookie")
			if strings.HasSuffix(path, ".html") {
				return rewriteDevToolsHTML(resp)
			}
			resp.Header.Set("Cache-Control", "private, max-age=3600")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.writeError(w, r, &bb.Error{Code: bb.CodeUnavailable, Message: "the session's browser is not reachable", Err: err})
		},
		Transport: s.devtools,
	}
	rp.ServeHTTP(w, r)
}

// devtoolsCSP matches the Content-Security-Policy meta tag of DevTools' HTML pages,
// whose connect-src names ws://127.0.0.1:* only.
var devtoolsCSP = regexp.MustCompile(`(?s)(<meta\s+http-equiv="Content-Security-Policy"\s+content="[^"]*?connect-src)([^";]*)`)

// rewriteDevToolsHTML lets the frontend open its websocket to browserd: 'self' (which
// CSP 3 extends to ws: and wss: on the same host and port) leads the connect-src of the
// page's CSP meta tag.
func rewriteDevToolsHTML(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read DevTools page: %w", err)
	}
	body = devtoolsCSP.ReplaceAll(body, []byte("$1 'self'$2"))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Cache-Control", "no-store")
	return nil
}

// relayDevTools relays a DevTools websocket to the browser: path "browser" to the
// browser-level endpoint (wsUrl), "page/<target>" to that page's.
func (s *Server) relayDevTools(w http.ResponseWriter, r *http.Request, t *bb.LiveTarget, path string) {
	dst := t.BrowserURL
	if id, ok := strings.CutPrefix(path, "page/"); ok && validTargetID(id) {
		var err error
		if dst, err = cdp.PageURL(t.BrowserURL, id); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else if path != "browser" {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "DevTools websockets are …/devtools/browser and …/devtools/page/<target id>"))
		return
	}
	if s.cfg.DevTools == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnavailable, "DevTools websockets are not available on this server"))
		return
	}
	if !s.enter(&s.relays) {
		s.writeError(w, r, bb.Errorf(bb.CodeUnavailable, "the server is shutting down"))
		return
	}
	defer s.leave(&s.relays)
	log := s.log.With("session_id", t.SessionID)
	log.Info("devtools connected", "target", path)
	// The gateway's relay: the same rules as connectUrl (F2), closed with closeEnded,
	// closeExpired, or 1001 when the Server closes.
	s.cfg.DevTools.RelayDevTools(w, r, t, dst, s.ctx.Done())
	log.Info("devtools disconnected", "target", path)
}
