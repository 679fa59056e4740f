package cdpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
	// endClose is the close frame for the end of the session [(*conn).sessionEndClose].
	endClose func() (closeCode, string)

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
	c := &conn{sessionID: a.sessionID, att: a.att}
	c.endClose = c.sessionEndClose
	g.relay(w, r, key, c, a.browserURL, true, max(g.cfg.IdleTimeout, 0), stopper{what: "session ended", ch: a.att.Ended(), why: c.endClose})
}

// relay dials browserURL, completes the client's upgrade and relays c until it ends;
// logs says whether the session's CDP logs get its commands.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, key string, c *conn, browserURL string, logs bool, idle time.Duration, stops ...stopper) {
	if !g.reserve(c.sessionID) {
		g.writeError(w, r, bb.Errorf(bb.CodeLimit, "session %s already has %d CDP connections, the most it may have", c.sessionID, g.cfg.MaxConnsPerSession))
		return
	}
	defer g.unreserve(c.sessionID)
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.DialTimeout)
	bconn, br, err := dialBrowser(ctx, browserURL)
	cancel()
	if err != nil {
		g.writeError(w, r, &statusError{status: http.StatusBadGateway, msg: "the session's browser is not reachable", err: err})
		return
	}
	cconn, cr, err := hijack(w, key, g.cfg.WriteTimeout)
	if err != nil {
		_ = bconn.Close() // we are giving up on it
		g.log.WarnContext(r.Context(), "cdp upgrade failed", "session_id", c.sessionID, "err", err)
		return
	}
	c.since = time.Now()
	cfg := relayConfig{
		maxMessage:   g.cfg.MaxMessageSize,
		inspectMax:   g.cfg.InspectMessageSize,
		idle:         idle,
		writeTimeout: g.cfg.WriteTimeout,
		closeWait:    g.closeWait,
	}
	h := g.hooksFor(c, &cfg, logs) // may set cfg.observeMax and headMax
	c.rl = newRelay(cfg, h, cconn, cr, bconn, br)

	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.log.InfoContext(r.Context(), "cdp client connected", "session_id", c.sessionID, "remote_addr", r.RemoteAddr)

	all := append(stops, stopper{what: "shutdown", ch: g.done, why: func() (closeCode, string) { return closeGoingAway, "server shutting down" }})
	cause := c.rl.run(c.browserGone, all...)
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

// sessionEndClose is the close frame for an ended session: 1000 for a normal end
// (COMPLETED, TIMED_OUT), 1011 for ERROR.
func (c *conn) sessionEndClose() (closeCode, string) {
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

// noteClose sees a client's Browser.close: it makes the browser exit, which must end
// the session as COMPLETED rather than ERROR (spec/API.md §5.1), so the session is
// told before Chromium gets the command.
func (c *conn) noteClose(cmd command) {
	if string(cmd.method) == bb.MethodBrowserClose {
		c.browserClosing.Store(true)
		c.att.BrowserClosing()
	}
}

// inspectClient sees each client text message of at most the inspect limit before it
// is forwarded: Browser.close, the logs, and the paths of the commands that name files
// (bb.ConfineCDPCommand).
func (c *conn) inspectClient(msg []byte, cmd command) verdict {
	c.noteClose(cmd)
	if c.log != nil {
		c.log.command(msg, len(msg), cmd)
	}
	if cmd.longName || !bb.ConfinedCDPMethod(string(cmd.method)) {
		return verdict{}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(msg, &top); err != nil { // scanned: cannot fail
		return verdict{refuse: &frameError{closePolicyViolation, "client message is not a JSON object"}}
	}
	params, err := bb.ConfineCDPCommand(string(cmd.method), top["params"], c.live)
	if err != nil {
		return refuseCommand(cmd, err)
	}
	top["params"] = params
	out, err := json.Marshal(top)
	if err != nil { // raw values that decoded always encode
		return verdict{refuse: &frameError{closePolicyViolation, "client message is not a JSON object"}}
	}
	return verdict{out: out}
}

// inspectStreamed sees a client text message over the inspect limit once it has been
// scanned: a command the gateway must rewrite or refuse cannot be relayed unread.
func (c *conn) inspectStreamed(cmd command, head []byte, size int64) verdict {
	c.noteClose(cmd)
	if c.log != nil {
		c.log.command(head, int(size), cmd)
	}
	if !cmd.longName && bb.ConfinedCDPMethod(string(cmd.method)) {
		return verdict{refuse: &frameError{closeTooBig, fmt.Sprintf("%s over %d bytes is not relayed", cmd.method, c.rl.cfg.inspectMax)}}
	}
	return verdict{}
}

// refuseCommand answers a refused command with a CDP error without running it: the
// command becomes one Chromium answers with an error naming the reason ('browserd
// refused …' wasn't found), so the client's call fails like any other. A command
// without an id the browser would answer is refused by closing the connection.
func refuseCommand(cmd command, err error) verdict {
	reason := bb.MessageOf(err)
	if !cmd.hasID {
		return verdict{refuse: &frameError{closePolicyViolation, reason}}
	}
	// Chromium takes only ASCII method names; its error repeats the name, which a
	// client's path could make long.
	if len(reason) > 300 {
		reason = reason[:300] + "…"
	}
	method := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, "browserd refused the command: "+reason)
	out, jerr := json.Marshal(struct {
		ID        int64  `json:"id"`
		SessionID string `json:"sessionId,omitempty"`
		Method    string `json:"method"`
	}{cmd.id, string(cmd.sessionID), method})
	if jerr != nil { // plain fields always encode
		return verdict{refuse: &frameError{closePolicyViolation, reason}}
	}
	return verdict{out: out}
}
