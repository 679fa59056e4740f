package webdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	bb "github.com/browserd/browserd"
)

// wdSession is one WebDriver session: a chromedriver session attached to a browserd
// session's browser. Its mutable fields are guarded by Handler.mu.
type wdSession struct {
	id, sessionID, projectID string
	drv                      *driver
	att                      attachment

	ended    *wdError // why it ended; nil while it lives
	inflight int      // commands being relayed
	idle     *time.Timer
}

const (
	// maxCreateBody bounds the capabilities of a New Session. Extensions belong in
	// POST /v1/extensions (a session's extensionId), not base64 in the capabilities.
	maxCreateBody     = 1 << 20
	maxCreateResponse = 1 << 20
	createTimeout     = 60 * time.Second
	deleteTimeout     = 10 * time.Second
)

// create serves POST /session: it attaches to the browserd session, makes sure its
// chromedriver runs, and creates a chromedriver session attached to the browser.
func (h *Handler) create(w http.ResponseWriter, r *http.Request, creds bb.ConnectCredentials) {
	start := time.Now()
	if h.cfg.Chromedriver == "" {
		writeError(w, newError(http.StatusNotImplemented, errSessionNotCreated, "Selenium is not available on this "+
			"server: chromedriver is not installed (Debian: apt-get install chromium-driver; or browserd serve --chromedriver PATH)"))
		return
	}
	// Authenticate before reading the body: an unauthenticated request costs no memory.
	if werr := h.authenticate(r.Context(), creds); werr != nil {
		writeError(w, werr)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCreateBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, newError(http.StatusRequestEntityTooLarge, errInvalidArgument, fmt.Sprintf(
			"the New Session body must not be larger than %d bytes (install extensions with POST /v1/extensions)", maxCreateBody)))
		return
	} else if err != nil {
		writeError(w, invalidArgument("read the New Session body: %v", err))
		return
	}
	// Check the capabilities before attaching: a refused request has no effect.
	if _, _, err := newSessionBody(body, "127.0.0.1:1"); err != nil {
		writeError(w, asWDError(err, errSessionNotCreated))
		return
	}
	a, err := h.attach(r.Context(), creds)
	if err != nil {
		writeError(w, fromBB(err, errSessionNotCreated))
		return
	}
	ws, resp, werr := h.newSession(r.Context(), a, body)
	if werr != nil {
		a.att.Detach()
		writeError(w, werr)
		return
	}
	if resp != nil { // chromedriver refused: relay its error as it is
		a.att.Detach()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.body) // the client may be gone; nothing to do
		return
	}
	h.log.Info("webdriver session created", "session_id", ws.sessionID, "webdriver_session_id", ws.id,
		"took", time.Since(start))
	writeJSON(w, http.StatusOK, map[string]any{"value": map[string]any{
		"sessionId": ws.id, "capabilities": ws.caps,
	}})
}

// rawResponse is a chromedriver error response relayed as it is.
type rawResponse struct {
	status int
	body   []byte
}

// created is what create answers: the new session and its rewritten capabilities.
type created struct {
	*wdSession
	caps map[string]json.RawMessage
}

// newSession starts (or reuses) the chromedriver of a's session and creates a WebDriver
// session on it. On failure the caller detaches a.
func (h *Handler) newSession(ctx context.Context, a attached, body []byte) (*created, *rawResponse, *wdError) {
	u, err := url.Parse(a.browserURL)
	if err != nil || u.Host == "" {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, "the session's browser has no DevTools address")
	}
	out, dropped, err := newSessionBody(body, u.Host)
	if err != nil {
		return nil, nil, asWDError(err, errSessionNotCreated)
	}
	if len(dropped) > 0 {
		h.log.Debug("webdriver capabilities dropped", "session_id", a.sessionID, "capabilities", dropped)
	}
	d, err := h.driverFor(ctx, a)
	if err != nil {
		h.log.Error("start chromedriver", "session_id", a.sessionID, "err", err)
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, "chromedriver did not start: "+err.Error())
	}
	ws, raw, werr := h.postSession(ctx, d, out)
	if werr != nil || raw != nil {
		h.releaseUser(d)
		return nil, raw, werr
	}
	ws.sessionID, ws.projectID, ws.drv, ws.att = a.sessionID, a.projectID, d, a.att

	h.mu.Lock()
	gone := d.dead || h.closed
	if !gone {
		h.wds[ws.id] = ws.wdSession
		h.armIdleLocked(ws.wdSession)
	}
	h.mu.Unlock()
	if gone { // the session ended (or the server began to shut down) meanwhile
		h.releaseUser(d)
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, "the browserd session ended while the WebDriver session was created")
	}
	return ws, nil, nil
}

// postSession sends the New Session command to chromedriver and decodes its answer.
func (h *Handler) postSession(ctx context.Context, d *driver, body []byte) (*created, *rawResponse, *wdError) {
	ctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.proc.addr+"/session", bytes.NewReader(body))
	if err != nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, err.Error())
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, h.relayFailure(d, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCreateResponse))
	if err != nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, h.relayFailure(d, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &rawResponse{status: resp.StatusCode, body: data}, nil
	}
	var v struct {
		Value struct {
			SessionID    string                     `json:"sessionId"`
			Capabilities map[string]json.RawMessage `json:"capabilities"`
		} `json:"value"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.Value.SessionID == "" || v.Value.Capabilities == nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, "chromedriver answered New Session without a session")
	}
	if err := rewriteCapabilities(v.Value.Capabilities); err != nil {
		return nil, nil, newError(http.StatusInternalServerError, errSessionNotCreated, err.Error())
	}
	return &created{wdSession: &wdSession{id: v.Value.SessionID}, caps: v.Value.Capabilities}, nil, nil
}

// quit serves DELETE /session/{id} (driver.quit()): it deletes the chromedriver session,
// ends the browserd session as COMPLETED (spec §4.2, §5.1), and answers once the
// session's chromedriver is gone. Quitting a session that already ended succeeds.
func (h *Handler) quit(w http.ResponseWriter, r *http.Request, ws *wdSession) {
	h.mu.Lock()
	var att attachment
	if ws.ended == nil {
		att = h.endLocked(ws, newError(http.StatusNotFound, errInvalidSessionID, "the WebDriver session was deleted (driver.quit())"))
	}
	h.mu.Unlock()
	if att != nil {
		h.deleteInDriver(r.Context(), ws)
		h.releaseUser(ws.drv)
	}
	_, err := h.cfg.Sessions.ReleaseSession(context.WithoutCancel(r.Context()), ws.projectID, ws.sessionID)
	if att != nil {
		att.Detach() // after the release: the session ends as released, not as disconnected
	}
	if err != nil {
		h.log.Error("release session on webdriver quit", "session_id", ws.sessionID, "err", err)
		writeError(w, fromBB(err, errUnknownError))
		return
	}
	select {
	case <-ws.drv.gone:
	case <-time.After(killTimeout):
		h.log.Error("chromedriver still running after its session was released", "session_id", ws.sessionID)
	}
	h.log.Info("webdriver session quit", "session_id", ws.sessionID, "webdriver_session_id", ws.id)
	writeJSON(w, http.StatusOK, map[string]any{"value": nil})
}

// deleteInDriver deletes the WebDriver session in chromedriver, which detaches from the
// browser and leaves it running. Failures only matter to the log: the driver goes next.
func (h *Handler) deleteInDriver(ctx context.Context, ws *wdSession) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+ws.drv.proc.addr+"/session/"+url.PathEscape(ws.id), nil)
	if err != nil {
		return
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.log.Debug("delete webdriver session in chromedriver", "session_id", ws.sessionID, "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drain for connection reuse
	resp.Body.Close()
}

// endLocked marks ws ended with err and remembers it for a while. It returns ws's
// attachment, which the caller detaches after unlocking; the caller also releases ws's
// use of the driver (releaseUser), after deleting the session in chromedriver if it may.
func (h *Handler) endLocked(ws *wdSession, err *wdError) attachment {
	ws.ended = err
	if ws.idle != nil {
		ws.idle.Stop()
	}
	h.gone = append(h.gone, ws.id)
	if len(h.gone) > maxGone {
		delete(h.wds, h.gone[0])
		h.gone = h.gone[1:]
	}
	return ws.att
}

// command relays one command to the session's chromedriver.
func (h *Handler) command(w http.ResponseWriter, r *http.Request, ws *wdSession, rest string) {
	select { // the driver is going: answer with why, once its watcher has said
	case <-ws.drv.ended:
		<-ws.drv.gone
	case <-ws.drv.proc.exited:
		<-ws.drv.gone
	default:
	}
	h.mu.Lock()
	if ws.ended != nil {
		e := *ws.ended
		h.mu.Unlock()
		writeError(w, &e)
		return
	}
	ws.inflight++
	if ws.idle != nil {
		ws.idle.Stop()
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		ws.inflight--
		if ws.ended == nil && ws.inflight == 0 {
			h.armIdleLocked(ws)
		}
		h.mu.Unlock()
	}()
	ctx := context.WithValue(r.Context(), targetKey{}, target{ws: ws, rawPath: "/session/" + url.PathEscape(ws.id) + rest})
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}

type targetKey struct{}

// target is where the reverse proxy sends a request.
type target struct {
	ws      *wdSession
	rawPath string // escaped
}

// rewrite points a relayed request at chromedriver, which only accepts requests for
// a loopback Host and no foreign Origin, and drops browserd's credentials.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(target)
	u := &url.URL{Scheme: "http", Host: t.ws.drv.proc.addr, RawQuery: pr.In.URL.RawQuery}
	if p, err := url.PathUnescape(t.rawPath); err == nil {
		u.Path, u.RawPath = p, t.rawPath
	} else { // the client sent it so; let chromedriver answer
		u.Path = t.rawPath
	}
	pr.Out.URL = u
	pr.Out.Host = ""
	for _, k := range []string{headerSigningKey, headerAPIKey, headerSessionID, "Enable-Proxy", "Origin", "Authorization", "Cookie"} {
		pr.Out.Header.Del(k)
	}
}

// proxyError answers a command chromedriver did not answer, in the WebDriver error shape.
func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	t := r.Context().Value(targetKey{}).(target)
	status, code := http.StatusInternalServerError, errUnknownError
	select {
	case <-t.ws.drv.ended:
		status, code = http.StatusNotFound, errInvalidSessionID
	default:
	}
	writeError(w, newError(status, code, h.relayFailure(t.ws.drv, err)))
}

// relayFailure explains why chromedriver did not answer: its session ended, it crashed,
// or the relay itself failed.
func (h *Handler) relayFailure(d *driver, err error) string {
	select {
	case <-d.ended:
		st, reason := d.endReason()
		return fmt.Sprintf("the browserd session %s has ended (%s: %s)", d.sessionID, st, reason)
	case <-d.proc.exited:
		return fmt.Sprintf("chromedriver exited unexpectedly (%s); the WebDriver session is lost. Its last output: %s",
			d.proc.exitStatus(), d.proc.lastOutput())
	case <-time.After(500 * time.Millisecond): // a crash's reset can beat the exit
	}
	return "relay to chromedriver: " + err.Error()
}

// armIdleLocked (re)starts ws's idle timer.
func (h *Handler) armIdleLocked(ws *wdSession) {
	if h.cfg.IdleTimeout <= 0 {
		return
	}
	if ws.idle != nil {
		ws.idle.Reset(h.cfg.IdleTimeout)
		return
	}
	ws.idle = time.AfterFunc(h.cfg.IdleTimeout, func() { h.endIdle(ws) })
}

// endIdle ends a WebDriver session that received no command for IdleTimeout, as if its
// client had disconnected: the browserd session ends after the disconnect grace unless
// it has keepAlive or other clients (spec §5.2, §5.3).
func (h *Handler) endIdle(ws *wdSession) {
	h.mu.Lock()
	if h.closed || ws.ended != nil || ws.inflight > 0 {
		h.mu.Unlock()
		return
	}
	h.wg.Add(1)
	att := h.endLocked(ws, newError(http.StatusNotFound, errInvalidSessionID, fmt.Sprintf(
		"the WebDriver session was closed after %s without a command", h.cfg.IdleTimeout)))
	h.mu.Unlock()
	defer h.wg.Done()
	h.deleteInDriver(context.Background(), ws)
	h.releaseUser(ws.drv)
	att.Detach()
	h.log.Info("webdriver session idle", "session_id", ws.sessionID, "webdriver_session_id", ws.id)
}

// asWDError returns err as a *wdError, or an internal one with code.
func asWDError(err error, code string) *wdError {
	if e, ok := err.(*wdError); ok {
		return e
	}
	return newError(http.StatusInternalServerError, code, err.Error())
}
