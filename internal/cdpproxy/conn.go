package cdpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
)

// conn is one relayed client connection.
type conn struct {
	sessionID string
	since     time.Time
	att       attachment
	rl        *relay

	browserClosing atomic.Bool // the client sent Browser.close

	live bb.LiveSession // the session's directories, when Config.Artifacts knows it
	log  *cdpLog        // nil when the session keeps no logs
}

func (c *conn) stats() Stats {
	return Stats{ClientBytes: c.rl.clientBytes.Load(), BrowserBytes: c.rl.browserBytes.Load()}
}

// serve dials the session's browser, completes the client's upgrade and relays until
// the connection ends. It detaches the attachment exactly once, whatever happens.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, key string, a attached) {
	defer a.att.Detach()
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.DialTimeout)
	bconn, br, err := dialBrowser(ctx, a.browserURL)
	cancel()
	if err != nil {
		g.writeError(w, r, &statusError{status: http.StatusBadGateway, msg: "the session's browser is not reachable", err: err})
		return
	}
	cconn, cr, err := hijack(w, key, g.cfg.WriteTimeout)
	if err != nil {
		_ = bconn.Close() // we are giving up on it
		g.log.WarnContext(r.Context(), "cdp upgrade failed", "session_id", a.sessionID, "err", err)
		return
	}
	c := &conn{sessionID: a.sessionID, since: time.Now(), att: a.att}
	cfg := relayConfig{
		maxMessage:   g.cfg.MaxMessageSize,
		idle:         max(g.cfg.IdleTimeout, 0),
		writeTimeout: g.cfg.WriteTimeout,
		closeWait:    g.closeWait,
	}
	h := g.hooksFor(c, &cfg) // may set cfg.observeMax
	c.rl = newRelay(cfg, h, cconn, cr, bconn, br)

	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.log.InfoContext(r.Context(), "cdp client connected", "session_id", c.sessionID, "remote_addr", r.RemoteAddr)

	cause := c.rl.run(
		stopper{what: "session ended", ch: a.att.Ended(), why: c.endClose},
		stopper{what: "shutdown", ch: g.done, why: func() (closeCode, string) { return closeGoingAway, "server shutting down" }},
		c.browserGone)
	if c.log != nil {
		c.log.end()
	}

	st := c.stats()
	g.mu.Lock()
	delete(g.conns, c)
	g.ended.ClientBytes += st.ClientBytes
	g.ended.BrowserBytes += st.BrowserBytes
	g.mu.Unlock()
	attrs := []any{"session_id", c.sessionID, "cause", cause.what, "close_code", int(cause.code),
		"client_bytes", st.ClientBytes, "browser_bytes", st.BrowserBytes, "duration", time.Since(c.since)}
	if cause.err != nil {
		attrs = append(attrs, "err", cause.err)
	}
	g.log.InfoContext(r.Context(), "cdp client disconnected", attrs...)
}

// endClose is the close frame for an ended session: 1000 for a normal end
// (COMPLETED, TIMED_OUT), 1011 for ERROR.
func (c *conn) endClose() (closeCode, string) {
	status, reason := c.att.EndReason()
	code := closeNormal
	if status == bb.StatusError {
		code = closeInternalError
	}
	return code, fmt.Sprintf("session ended: %s (%s)", status, reason)
}

// browserGone is the close frame for a browser connection that dropped without a
// close frame: the session's end if it ended (killing the browser), a normal close
// after Browser.close or the client's own close frame, else 1011.
func (c *conn) browserGone() (closeCode, string) {
	select {
	case <-c.att.Ended():
		return c.endClose()
	default:
	}
	if c.browserClosing.Load() || c.rl.clientClosed.Load() {
		return closeNormal, "browser closed"
	}
	return closeInternalError, "browser connection lost"
}

var browserCloseMethod = []byte(`"Browser.close"`)

// inspectClient sees each client text message before it is forwarded. Browser.close
// makes the browser exit, which must end the session as COMPLETED rather than ERROR
// (spec/API.md §5.1), so the session is told before Chromium gets the command.
func (c *conn) inspectClient(msg []byte) ([]byte, bool) {
	if bytes.Contains(msg, browserCloseMethod) && methodOf(msg) == "Browser.close" {
		c.browserClosing.Store(true)
		c.att.BrowserClosing()
	}
	return c.inspectArtifacts(msg)
}

// methodOf returns the method of a CDP command, or "" when msg is not one.
func methodOf(msg []byte) string {
	var cmd struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(msg, &cmd) != nil {
		return ""
	}
	return cmd.Method
}
