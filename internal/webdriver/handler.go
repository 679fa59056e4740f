package webdriver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// sessions is what the Handler needs of the session Manager; *bb.Manager satisfies it.
type sessions interface {
	Attach(ctx context.Context, c bb.ConnectCredentials) (*bb.Attachment, error)
	Authenticate(ctx context.Context, rawKey string) (*bb.APIKey, error)
	SigningKey(sessionID string) string
	ReleaseSession(ctx context.Context, projectID, id string) (*bb.Session, error)
}

// attachment is what the Handler needs of a *bb.Attachment.
type attachment interface {
	Ended() <-chan struct{}
	EndReason() (bb.SessionStatus, string)
	BrowserClosing()
	Detach()
}

// artifacts gives a session's directories, to which CDP commands through chromedriver
// are confined (cdp.go); *artifacts.Service (internal/artifacts) satisfies it.
type artifacts interface {
	Live(sessionID string) (bb.LiveSession, bool)
}

// attached is a browserd session a New Session request attached to.
type attached struct {
	sessionID, projectID string
	browserURL           string // ws://127.0.0.1:PORT/devtools/browser/…
	att                  attachment
}

// Config configures a Handler. Zero values take the defaults in brackets.
type Config struct {
	// Sessions authenticates requests and attaches WebDriver sessions to browserd sessions.
	Sessions sessions
	// Chromedriver is the chromedriver binary (see FindChromedriver); "" refuses every
	// New Session with an error that says chromedriver is not installed.
	Chromedriver string
	Logger       *slog.Logger
	// Prefix is the path the Handler is mounted at, the path of seleniumRemoteUrl
	// ["/webdriver"]; clients append /session….
	Prefix string
	// StartTimeout bounds the start of a chromedriver [20s].
	StartTimeout time.Duration
	// IdleTimeout ends a WebDriver session that received no command for this long, as a
	// CDP connection is closed after the same time without a command (spec §5.2); 0 (or
	// <0) disables it. `browserd serve` passes --idle-timeout (10m by default).
	IdleTimeout time.Duration
	// Ports, when set, is told of every chromedriver's loopback port, so that no session
	// proxy lets a browser reach one (*bb.ReservedPorts).
	Ports interface {
		Reserve(port uint16) (release func())
	}
	// Artifacts gives the session directories that download and upload paths of CDP
	// commands (goog/cdp/execute) are confined to. Without it, those commands are
	// refused.
	Artifacts artifacts
}

// Handler serves the WebDriver endpoint. See the package documentation.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	attach func(context.Context, bb.ConnectCredentials) (attached, error)
	client *http.Client // to chromedrivers: loopback, never through a proxy
	proxy  *httputil.ReverseProxy
	done   chan struct{} // closed by Shutdown

	mu      sync.Mutex
	closed  bool
	drivers map[string]*driver    // by browserd session id
	wds     map[string]*wdSession // by WebDriver session id; ended ones are kept a while
	gone    []string              // ended WebDriver session ids, oldest first
	wg      sync.WaitGroup        // requests, driver watchers and idle ends in progress
}

// maxGone is how many ended WebDriver sessions are remembered, so that their later
// commands get the reason they ended rather than a bare "invalid session id".
const maxGone = 1024

// New returns a Handler. Call Shutdown to stop its chromedrivers.
func New(cfg Config) (*Handler, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("webdriver: Sessions is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/webdriver"
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	tr := &http.Transport{
		Proxy:               nil, // chromedriver is on loopback; ignore HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true, // relay exactly what the client asked for
	}
	h := &Handler{
		cfg:     cfg,
		log:     cfg.Logger,
		client:  &http.Client{Transport: tr},
		done:    make(chan struct{}),
		drivers: make(map[string]*driver),
		wds:     make(map[string]*wdSession),
	}
	h.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		a, err := cfg.Sessions.Attach(ctx, c)
		if err != nil {
			return attached{}, err
		}
		return attached{sessionID: a.SessionID, projectID: a.ProjectID, browserURL: a.BrowserURL, att: a}, nil
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    tr,
		ErrorHandler: h.proxyError,
		ErrorLog:     slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return h, nil
}

// ServeHTTP routes a WebDriver request: POST /session creates a session, DELETE
// /session/{id} quits it, and every other /session/{id}/… command is relayed.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The escaped path, so that an escaped "/" in a parameter (a cookie name) stays one.
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), h.cfg.Prefix)
	if !ok || (path != "" && path[0] != '/') {
		writeError(w, newError(http.StatusNotFound, errUnknownCommand, "unknown command: "+r.URL.Path))
		return
	}
	if !h.enter() {
		writeError(w, newError(http.StatusServiceUnavailable, errUnknownError, "the server is shutting down"))
		return
	}
	defer h.wg.Done()
	creds, err := credentials(r.Header)
	if err != nil {
		if path == "/session" {
			err.code = errSessionNotCreated
		}
		writeError(w, err)
		return
	}
	path = strings.TrimSuffix(path, "/")
	switch {
	case path == "/session":
		if r.Method != http.MethodPost {
			writeError(w, newError(http.StatusMethodNotAllowed, "unknown method", r.Method+" /session"))
			return
		}
		h.create(w, r, creds)
	case strings.HasPrefix(path, "/session/"):
		id, rest, _ := strings.Cut(path[len("/session/"):], "/")
		if rest != "" {
			rest = "/" + rest
		}
		if id == "" {
			writeError(w, newError(http.StatusNotFound, errUnknownCommand, "unknown command: "+r.URL.Path))
			return
		}
		ws, werr := h.authorize(r.Context(), creds, id)
		if werr != nil {
			writeError(w, werr)
			return
		}
		if r.Method == http.MethodDelete && rest == "" {
			h.quit(w, r, ws)
			return
		}
		if r.Method == http.MethodPost && isCDPCommand(rest) {
			h.cdpCommand(w, r, ws, rest) // cdp.go: CDP commands get the gateway's rules
			return
		}
		h.command(w, r, ws, rest)
	default:
		writeError(w, newError(http.StatusNotFound, errUnknownCommand, "unknown command: "+r.URL.Path))
	}
}

// enter registers work with h.wg unless the Handler is shut down; the caller must call
// h.wg.Done.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// Shutdown ends every WebDriver session (their commands fail with an error that says
// why), stops every chromedriver, and waits for them until ctx ends. It does not end the
// browserd sessions: the Manager's Close does. Call it before the Manager's Close.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }() // ends when the last watcher and request do
	select {
	case <-done:
		h.client.CloseIdleConnections()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
