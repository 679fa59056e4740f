package cdpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// sessions authenticates connections; satisfied by *bb.Manager.
type sessions interface {
	Attach(ctx context.Context, c bb.ConnectCredentials) (*bb.Attachment, error)
}

// attachment is what a connection needs of a *bb.Attachment.
type attachment interface {
	Ended() <-chan struct{}
	EndReason() (bb.SessionStatus, string)
	BrowserClosing()
	Detach()
}

// attached is an authenticated connection: where to relay it, and its attachment.
type attached struct {
	sessionID, browserURL string
	att                   attachment
}

// Config configures a Gateway. Zero values take the defaults in brackets.
type Config struct {
	// Sessions authenticates connections and attaches them to sessions.
	Sessions sessions
	Logger   *slog.Logger
	// IdleTimeout closes (1000, "idle timeout") a client that sent no CDP message for
	// this long; 0 (or <0) disables it. Browserbase closes CDP connections after 10
	// minutes without a command (spec/API.md §5.2), which `browserd serve --idle-timeout`
	// sets by default. Pings do not count as activity.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client or browser that stops reading [30s].
	WriteTimeout time.Duration
	// DialTimeout bounds connecting to the session's browser [10s].
	DialTimeout time.Duration
	// MaxMessageSize limits a client's messages (close 1009 beyond) [64 MiB]. Chromium
	// reads at most 100 MiB per message (its DevTools receive buffer); 64 MiB leaves
	// room for a 48 MiB body in Fetch.fulfillRequest (Playwright's route.fulfill),
	// base64-encoded. Browser messages are streamed and have no limit.
	MaxMessageSize int64
	// InspectMessageSize is the largest client text message the gateway assembles and
	// parses whole [1 MiB]. Larger ones are relayed as they come and scanned on the
	// way; one whose method the gateway must rewrite or refuse (bb.ConfinedCDPMethod)
	// is refused (1009) before the browser has all of it. No client sends such a
	// command over a few KiB.
	InspectMessageSize int64
	// MaxConnsPerSession limits a session's CDP connections, the live view's DevTools
	// included [16]; beyond, upgrades are refused with 429 before any websocket.
	MaxConnsPerSession int
	// Artifacts, when set, gets the CDP logs of sessions that keep them and gives the
	// session directories that download and upload paths are mapped to (artifacts.go).
	Artifacts artifacts
}

// Gateway is the CDP websocket endpoint of connectUrl. It authenticates each upgrade
// with Config.Sessions and relays the connection to the session's browser until one
// side leaves, the session ends, the client is idle, or the Gateway shuts down.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	attach    func(context.Context, bb.ConnectCredentials) (attached, error)
	closeWait time.Duration
	done      chan struct{} // closed by Shutdown

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}
	sessConn map[string]int // connections per session, counted from before the dial
	ended    Stats          // bytes of the connections that have ended
	wg       sync.WaitGroup // connections being served
}

// Stats count the bytes a Gateway relayed, websocket frame headers included.
type Stats struct {
	ClientBytes  int64 // from clients to browsers
	BrowserBytes int64 // from browsers to clients
}

// ConnStats describe one live connection.
type ConnStats struct {
	SessionID string
	Since     time.Time
	Stats
}

// New returns a Gateway. Call Shutdown (or Close) to end its connections.
func New(cfg Config) *Gateway {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 64 << 20
	}
	if cfg.InspectMessageSize <= 0 {
		cfg.InspectMessageSize = 1 << 20
	}
	cfg.InspectMessageSize = min(cfg.InspectMessageSize, cfg.MaxMessageSize)
	if cfg.MaxConnsPerSession <= 0 {
		cfg.MaxConnsPerSession = 16
	}
	g := &Gateway{
		cfg:       cfg,
		log:       cfg.Logger,
		closeWait: 2 * time.Second,
		done:      make(chan struct{}),
		conns:     make(map[*conn]struct{}),
		sessConn:  make(map[string]int),
	}
	g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		if cfg.Sessions == nil {
			return attached{}, errors.New("cdpproxy: no Sessions configured")
		}
		a, err := cfg.Sessions.Attach(ctx, c)
		if err != nil {
			return attached{}, err
		}
		return attached{sessionID: a.SessionID, browserURL: a.BrowserURL, att: a}, nil
	}
	return g
}

// ServeHTTP serves a client's websocket upgrade. The request is authenticated and its
// session's browser dialled before the upgrade: a refused request gets an HTTP error
// in the API's error shape and never a websocket.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := checkUpgrade(r)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		g.writeError(w, r, bb.Errorf(bb.CodeInvalid, "malformed query string"))
		return
	}
	creds, err := ParseCredentials(q)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	if !g.enter() {
		g.writeError(w, r, bb.Errorf(bb.CodeUnavailable, "the server is shutting down"))
		return
	}
	defer g.wg.Done()
	a, err := g.attach(r.Context(), creds)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.serve(w, r, key, a)
}

// enter registers a connection with g.wg unless g is shutting down. The caller calls
// g.wg.Done.
func (g *Gateway) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// reserve counts a new connection of a session, unless it has MaxConnsPerSession.
func (g *Gateway) reserve(sessionID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessConn[sessionID] >= g.cfg.MaxConnsPerSession {
		return false
	}
	g.sessConn[sessionID]++
	return true
}

func (g *Gateway) unreserve(sessionID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessConn[sessionID]--; g.sessConn[sessionID] <= 0 {
		delete(g.sessConn, sessionID)
	}
}

// Shutdown closes every connection, sending clients 1001 "server shutting down", and
// waits until they are gone or ctx is done. New upgrades are refused with 503. Shut
// the Gateway down before the session Manager, so that clients see 1001 rather than
// the end of their sessions.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
	g.mu.Unlock()
	done := make(chan struct{})
	// Exits when the last connection ends, which takes at most about closeWait plus
	// WriteTimeout once g.done is closed.
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close is Shutdown without a deadline.
func (g *Gateway) Close() error { return g.Shutdown(context.Background()) }

// Stats returns the bytes relayed so far by all connections, live ones included.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.ended
	for c := range g.conns {
		cs := c.stats()
		s.ClientBytes += cs.ClientBytes
		s.BrowserBytes += cs.BrowserBytes
	}
	return s
}

// Conns returns the live connections and their byte counts.
func (g *Gateway) Conns() []ConnStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ConnStats, 0, len(g.conns))
	for c := range g.conns {
		out = append(out, ConnStats{SessionID: c.sessionID, Since: c.since, Stats: c.stats()})
	}
	return out
}

// statusError is a refusal with an HTTP status and no bb.ErrorCode; msg is shown to
// the client, err is logged.
type statusError struct {
	status int
	msg    string
	err    error
}

func (e *statusError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *statusError) Unwrap() error { return e.err }

// wireError is the API's error body (spec/API.md §1.5).
type wireError struct {
	StatusCode int    `json:"statusCode"`
	Code       int    `json:"code"`
	Error      string `json:"error"`
	Message    string `json:"message"`
}

// writeError refuses a connection with an HTTP error. Only client-safe messages are
// shown; 5xx errors are logged. Nothing logged carries the request's query, which
// holds the credentials.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var status int
	var msg string
	if ue, ok := errors.AsType[*upgradeError](err); ok {
		status, msg = ue.status, ue.msg
	} else if se, ok := errors.AsType[*statusError](err); ok {
		status, msg = se.status, se.msg
	} else {
		status, msg = bb.HTTPStatus(bb.CodeOf(err)), bb.MessageOf(err)
	}
	if msg == "" || status == http.StatusInternalServerError {
		msg = http.StatusText(status)
	}
	if status >= 500 {
		g.log.ErrorContext(r.Context(), "cdp connect failed", "path", r.URL.Path, "status", status, "err", err)
	} else {
		g.log.InfoContext(r.Context(), "cdp connect refused", "path", r.URL.Path, "status", status, "reason", msg)
	}
	if status == http.StatusUpgradeRequired {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
	}
	body, jerr := json.Marshal(wireError{StatusCode: status, Code: status, Error: http.StatusText(status), Message: msg})
	if jerr != nil { // four plain fields always encode
		body = nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the status is sent; a failed write means the client left
}
