package liveview

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
)

// sessions is what the live view and the dashboard call; *bb.Manager satisfies it.
type sessions interface {
	OpenLiveView(ctx context.Context, token string) (*bb.LiveTarget, error)
	LiveView(ctx context.Context, projectID, id string, ttl time.Duration, readOnly bool) (*bb.LiveView, error)
	Authenticate(ctx context.Context, rawKey string) (*bb.APIKey, error)
	Session(ctx context.Context, projectID, id string) (*bb.Session, error)
	Sessions(ctx context.Context, projectID string, f bb.SessionFilter) ([]*bb.Session, error)
	ReleaseSession(ctx context.Context, keyProjectID, id string) (*bb.Session, error)
	Project(ctx context.Context, keyProjectID, id string) (*bb.Project, error)
}

// Config configures a Server. Zero values take the defaults in brackets.
type Config struct {
	// Sessions opens live views and serves the dashboard; required.
	Sessions sessions
	// API is the REST API handler. The dashboard serves a session's logs and downloads
	// through it, with the signed-in API key.
	API http.Handler
	// Artifacts serves the session inspector its logs, recording and files;
	// *artifacts.Service satisfies it. Without it those answer 404.
	Artifacts artifactReader
	Logger    *slog.Logger
	// PublicURL is the base URL clients reach the server at (see httpapi.Config); empty:
	// derived from each request.
	PublicURL string
	// FrameAncestors is the CSP frame-ancestors source list of the live view page: who
	// may embed it in an iframe ["*"].
	FrameAncestors string
	// Settings keeps what the dashboard's sign-ins share: the key their cookies are
	// sealed with and each API key's last sign-out. With the store's settings every node
	// of a cluster (and the server after a restart) honours a sign-in; nil keeps them in
	// this process.
	Settings SettingStore
	// SignInTTL is how long a dashboard sign-in lasts [12h].
	SignInTTL time.Duration
	// WriteTimeout bounds each write to a viewer [15s].
	WriteTimeout time.Duration
	// DevTools relays DevTools websockets (wsUrl, the DevTools frontend) to the
	// session's browser under the CDP gateway's client rules; *cdpproxy.Gateway
	// satisfies it. Without it those websockets are refused (503): a raw relay would
	// let a live view token holder past the rules (download and upload paths,
	// Browser.close, message sizes) that connectUrl enforces.
	DevTools devtoolsRelay
	// MaxViewersPerSession limits the live view pages (screencasts) watching one
	// session at a time [10]; beyond, 429.
	MaxViewersPerSession int
}

// devtoolsRelay relays a DevTools websocket upgrade r to url, a websocket of t's
// browser, until the session ends, the token expires or done is closed.
type devtoolsRelay interface {
	RelayDevTools(w http.ResponseWriter, r *http.Request, t *bb.LiveTarget, url string, done <-chan struct{})
}

// Server serves live views (/debug/<token>/…: the screencast page, its websocket and
// DevTools) and the dashboard (/ui/…, and / which leads there). Create it with New; Close ends its
// connections.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions sessions
	public   *url.URL
	tmpl     *template.Template
	mux      *http.ServeMux
	signins  *signins
	devtools http.RoundTripper // fetches DevTools files from loopback browsers

	ctx    context.Context // cancelled by Close: ends every connection
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	viewers int            // screencast viewers connected
	watch   map[string]int // screencast viewers per session
	relays  int            // DevTools connections
	wg      sync.WaitGroup // connections being served
}

//go:embed assets
var assets embed.FS

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("liveview: Config.Sessions is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FrameAncestors == "" {
		cfg.FrameAncestors = "*"
	}
	if strings.ContainsAny(cfg.FrameAncestors, ";,\r\n") {
		return nil, fmt.Errorf("liveview: FrameAncestors %q must be a CSP source list", cfg.FrameAncestors)
	}
	if cfg.SignInTTL <= 0 {
		cfg.SignInTTL = 12 * time.Hour
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 15 * time.Second
	}
	if cfg.MaxViewersPerSession <= 0 {
		cfg.MaxViewersPerSession = 10
	}
	if cfg.Settings == nil {
		cfg.Settings = &memSettings{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	signins, err := newSignins(ctx, cfg.SignInTTL, cfg.Settings)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("liveview: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: cfg.Sessions, signins: signins, watch: make(map[string]int),
		// Never through a proxy from the environment: the browsers are on loopback.
		devtools: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	if cfg.PublicURL != "" {
		u, err := bb.ParsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("liveview: %w", err)
		}
		s.public = u
	}
	tmpl, err := template.New("").Funcs(templateFuncs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("liveview: parse templates: %w", err)
	}
	s.tmpl = tmpl
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = s.routes()
	return s, nil
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// Live views: the token is the credential, so these work in another site's iframe.
	mux.HandleFunc("GET /debug/{token}/view", s.handleView)
	mux.HandleFunc("GET /debug/{token}/live.js", s.handleAsset("live.js"))
	mux.HandleFunc("GET /debug/{token}/live.css", s.handleAsset("live.css"))
	mux.HandleFunc("GET /debug/{token}/status", s.handleStatus)
	mux.HandleFunc("GET /debug/{token}/screencast", s.handleScreencast)
	mux.HandleFunc("GET /debug/{token}/devtools/{path...}", s.handleDevTools)
	// The dashboard: an API key signs in; a cookie names the sign-in. It lives under /ui/,
	// the path its cookie is scoped to; / leads there.
	mux.HandleFunc("GET /{$}", handleRoot)
	mux.HandleFunc("GET /ui/{$}", s.handleHome)
	mux.HandleFunc("POST /ui/login", s.handleLogin)
	mux.HandleFunc("POST /ui/logout", s.handleLogout)
	mux.HandleFunc("GET /ui/sessions/{id}", s.handleSessionPage)
	mux.HandleFunc("POST /ui/sessions/{id}/release", s.handleRelease)
	mux.HandleFunc("GET /ui/sessions/{id}/{artifact}", s.handleArtifact)
	// The inspector (inspector.go) and the project page (charts.go): pages, and the
	// JSON their scripts read (apiKey: the cookie and the page's token).
	mux.HandleFunc("GET /ui/sessions/{id}/inspector", s.handleInspector)
	mux.HandleFunc("GET /ui/sessions/{id}/files/{kind}/{name}", s.handleFile)
	mux.HandleFunc("GET /ui/api/sessions/{id}/logs", s.handleLogPage)
	mux.HandleFunc("GET /ui/api/sessions/{id}/recording", s.handleRecordingStream)
	mux.HandleFunc("GET /ui/api/sessions/{id}/files", s.handleFiles)
	mux.HandleFunc("GET /ui/api/sessions/{id}/replays", s.handleReplays) // replays.go
	mux.HandleFunc("GET /ui/api/sessions/{id}/replays/{pageId}", s.handleReplayPlaylist)
	mux.HandleFunc("GET /ui/api/sessions/{id}/replays/{pageId}/{segment}", s.handleReplaySegment)
	mux.HandleFunc("GET /ui/project", s.handleProjectPage)
	mux.HandleFunc("GET /ui/api/project", s.handleProjectUsage)
	mux.HandleFunc("GET /ui/assets/{file}", s.handleDashboardAsset)
	mux.HandleFunc("GET /ui/webhooks", s.handleWebhooks)         // webhooks.go
	mux.HandleFunc("GET /ui/webhooks/{id}", s.handleWebhookPage) // a webhook's deliveries
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "Route %s %s not found", r.Method, r.URL.Path))
	})
	return mux
}

// Handler returns the handler of /debug/, /ui/ and / (exactly).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// Live view URLs carry their token: never hand it to another site.
		h.Set("Referrer-Policy", "no-referrer")
		s.mux.ServeHTTP(w, r)
	})
}

// Close ends every live view and DevTools connection and waits for them, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	if t, ok := s.devtools.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }() // ends when the connections have
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Viewers returns how many screencast viewers are connected.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewers
}

// enter registers a connection; false once Close was called.
func (s *Server) enter(count *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	*count++
	return true
}

func (s *Server) leave(count *int) {
	s.mu.Lock()
	*count--
	s.mu.Unlock()
	s.wg.Done()
}

// enterViewer registers a screencast viewer of a session: each costs the browser a
// screencast, so a session has at most MaxViewersPerSession (F13).
func (s *Server) enterViewer(sessionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return bb.Errorf(bb.CodeUnavailable, "the server is shutting down")
	case s.watch[sessionID] >= s.cfg.MaxViewersPerSession:
		return bb.Errorf(bb.CodeLimit, "session %s already has %d live view viewers, the most it may have", sessionID, s.cfg.MaxViewersPerSession)
	}
	s.wg.Add(1)
	s.viewers++
	s.watch[sessionID]++
	return nil
}

func (s *Server) leaveViewer(sessionID string) {
	s.mu.Lock()
	s.viewers--
	if s.watch[sessionID]--; s.watch[sessionID] <= 0 {
		delete(s.watch, sessionID)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// publicBase returns the base URL clients reach the server at (bb.PublicBase).
func (s *Server) publicBase(r *http.Request) url.URL { return bb.PublicBase(r, s.public) }

// open checks the request's live view token and returns its session, or writes the error.
func (s *Server) open(w http.ResponseWriter, r *http.Request) (*bb.LiveTarget, bool) {
	t, err := s.sessions.OpenLiveView(r.Context(), r.PathValue("token"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return t, true
}

// writeError answers err in the API's error shape (spec §1.5), or as a small HTML page
// to a browser navigating to it. Paths are not logged: they hold live view tokens.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := bb.HTTPStatus(bb.CodeOf(err))
	msg := bb.MessageOf(err)
	if msg == "" {
		msg = http.StatusText(status)
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "live view request failed", "method", r.Method, "status", status, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		// The status is sent; a failed write means the client went away.
		_ = s.tmpl.ExecuteTemplate(w, "error.html", map[string]any{"Status": status, "Text": http.StatusText(status), "Message": msg})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{ // the status is sent; see above
		"statusCode": status, "code": status, "error": http.StatusText(status), "message": msg})
}

// handleView serves the live view page.
func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	t, ok := s.open(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	last := func(k string) string {
		v := q[k]
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	page := last("page")
	if !validTargetID(page) {
		page = ""
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Embeddable by default (docs/COMPATIBILITY.md); connect-src 'self' covers the
	// same-origin ws(s): websocket.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "+s.cfg.FrameAncestors)
	err := s.tmpl.ExecuteTemplate(w, "view.html", map[string]any{
		"SessionID": t.SessionID,
		"ReadOnly":  t.ReadOnly,
		"Page":      page,
		"NoNavbar":  last("navbar") == "false",
	})
	if err != nil {
		s.log.Error("render live view", "err", err)
	}
}

func (s *Server) handleAsset(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.open(w, r); !ok {
			return
		}
		serveAsset(w, r, "assets/"+name)
	}
}

func (s *Server) handleDashboardAsset(w http.ResponseWriter, r *http.Request) {
	switch f := r.PathValue("file"); f {
	case "dashboard.css", "inspector.js", "inspector.css", "project.js", "video.js":
		serveAsset(w, r, "assets/"+f)
	default:
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "no such asset"))
	}
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, assets, name)
}

// handleStatus tells a live view page that cannot connect whether to keep trying: 200
// while the session runs, else the error (401 expired, 404, 410 ended).
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	t, ok := s.open(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{ // a failed write means the client left
		"sessionId": t.SessionID, "readOnly": t.ReadOnly, "expires": t.Expires.UnixMilli()})
}

// handleScreencast is the live view page's websocket (see viewer).
func (s *Server) handleScreencast(w http.ResponseWriter, r *http.Request) {
	t, ok := s.open(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	readOnly := t.ReadOnly || q.Get("readonly") == "1" || q.Get("readonly") == "true"
	page := q.Get("page")
	if !validTargetID(page) {
		page = ""
	}
	pin := page != "" && q.Get("pin") == "1"
	if err := s.enterViewer(t.SessionID); err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.leaveViewer(t.SessionID)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	cdp, err := dialCDP(ctx, t.BrowserURL)
	cancel()
	if err != nil {
		s.writeError(w, r, &bb.Error{Code: bb.CodeUnavailable, Message: "the session's browser is not reachable", Err: err})
		return
	}
	defer cdp.close()
	// The token authenticates; no cookie does, so other origins may embed the page.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered the request
	}
	ws.SetReadLimit(maxViewerMessage)
	v := newViewer(s, t, ws, cdp, readOnly)
	v.log.Info("live view connected", "read_only", readOnly)
	st := v.serve(page, pin)
	fps := 0.0
	if st.duration > 0 {
		fps = float64(st.frames) / st.duration.Seconds()
	}
	v.log.Info("live view disconnected", "frames", st.frames, "duration", st.duration.Round(time.Millisecond), "fps", fmt.Sprintf("%.1f", fps))
}
