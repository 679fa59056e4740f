package liveview

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// callWait bounds each CDP command the live view waits for.
const callWait = 5 * time.Second

// Close codes of the viewer websocket beyond the standard ones; the page shows them and
// does not reconnect.
const (
	closeExpired websocket.StatusCode = 4401 // the token expired
	closeEnded   websocket.StatusCode = 4410 // the session ended
)

// tab is an open page of the browser.
type tab struct {
	ID    string `json:"id"`
	URL   string `json:"url"`
	Title string `json:"title"`
}

// targetInfo is CDP's Target.TargetInfo (the fields used).
type targetInfo struct {
	TargetID string `json:"targetId"`
	Type     string `json:"type"`
	URL      string `json:"url"`
	Title    string `json:"title"`
	OpenerID string `json:"openerId"`
}

func (t targetInfo) page() bool { return t.Type == "page" && !strings.HasPrefix(t.URL, "devtools://") }

// viewer bridges one live view page to the session's browser: it shows one tab through
// Page.startScreencast, passes input back, and keeps the page's tab list current. Its
// screencast runs only while the page is connected and visible.
type viewer struct {
	s        *Server
	t        *bb.LiveTarget
	ws       *websocket.Conn
	cdp      *cdpConn
	readOnly bool
	log      *slog.Logger
	ctx      context.Context // run's: ends when the viewer, the server or the writer does
	cancel   context.CancelCauseFunc
	// ioctx is the reader's and the writer's: it ends only after the close handshake,
	// since a cancelled read closes the connection without a close frame.
	ioctx    context.Context
	iocancel context.CancelFunc

	in       chan viewerMsg // from the reader goroutine
	text     chan []byte    // to the writer goroutine
	frameMu  sync.Mutex
	frame    *outFrame     // the newest frame not yet written; older ones are dropped
	frameSig chan struct{} // 1-buffered: frame was set

	// Owned by run.
	tabs      []tab
	active    string // the target shown, "" when none
	pinned    bool   // the viewer chose the tab: don't follow new ones
	follow    string // a new tab to show once it is in front (it may be created hidden)
	session   string // CDP session attached to active
	casting   bool
	paused    bool
	width     int // the viewer's canvas in device pixels; 0 until it says
	height    int
	quality   int
	seq       int64
	inFlight  int                 // frames sent to the viewer, not yet drawn or dropped
	held      []int               // Chromium's frame acks held back (see frameWindow)
	sentAt    map[int64]time.Time // by seq, frames in flight
	drawMS    float64             // moving average of send-to-drawn times
	drawn     int                 // frames drawn since the last quality change
	adaptedAt time.Time
	warnedRO  bool
	frames    int64 // frames sent, for the log
	inputs    map[string]inputStart
}

type outFrame struct {
	seq  int64
	data []byte
}

type inputStart struct {
	seq int64
	at  time.Time
}

// viewerStats is a summary logged when a viewer leaves.
type viewerStats struct {
	frames   int64
	duration time.Duration
}

func newViewer(s *Server, t *bb.LiveTarget, ws *websocket.Conn, conn *cdpConn, readOnly bool) *viewer {
	ctx, cancel := context.WithCancelCause(s.ctx)
	ioctx, iocancel := context.WithCancel(context.Background())
	return &viewer{
		ioctx: ioctx, iocancel: iocancel,
		s: s, t: t, ws: ws, cdp: conn, readOnly: readOnly,
		log:      s.log.With("session_id", t.SessionID),
		ctx:      ctx,
		cancel:   cancel,
		in:       make(chan viewerMsg),
		text:     make(chan []byte, 256),
		frameSig: make(chan struct{}, 1),
		quality:  startQuality,
		sentAt:   make(map[int64]time.Time),
		inputs:   make(map[string]inputStart),
	}
}

var (
	errViewerGone   = errors.New("viewer left")
	errViewerSlow   = errors.New("viewer too slow")
	errServerClosed = errors.New("server shutting down")
)

// serve runs the viewer until it leaves, the session ends, the token expires, the
// browser connection drops or the server closes; then it closes the websocket with a
// code that says which, and stops its goroutines.
func (v *viewer) serve(page string, pin bool) viewerStats {
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(v.read)
	wg.Go(v.write)
	code, reason := v.run(page, pin)
	if v.casting {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		// Best effort: closing the browser connection below stops it anyway.
		_ = v.cdp.call(ctx, v.session, "Page.stopScreencast", nil, nil)
		cancel()
	}
	// The close handshake (the reader takes the viewer's reply) may fail on a viewer
	// that is gone; nothing is left to do then. Cancelling first would close the
	// connection without a close frame.
	_ = v.ws.Close(code, reason)
	v.cancel(errViewerGone)
	v.iocancel()
	wg.Wait()
	return viewerStats{frames: v.frames, duration: time.Since(start)}
}

func (v *viewer) run(page string, pin bool) (websocket.StatusCode, string) {
	expiry := time.NewTimer(time.Until(v.t.Expires))
	defer expiry.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if err := v.setup(page, pin); err != nil {
		v.log.Warn("live view setup failed", "err", err)
		return websocket.StatusInternalError, "could not attach to the browser"
	}
	for {
		select {
		case m := <-v.in:
			v.handle(m)
		case <-v.cdp.notify:
			for _, e := range v.cdp.takeEvents() {
				v.event(e)
			}
		case <-v.cdp.done():
			return websocket.StatusInternalError, "browser connection lost"
		case <-v.t.Ended():
			return closeEnded, "session ended"
		case <-expiry.C:
			return closeExpired, "live view link expired"
		case <-tick.C:
			v.adapt()
			v.refreshTabs()
		case <-v.ctx.Done():
			switch context.Cause(v.ctx) {
			case errViewerSlow:
				return websocket.StatusPolicyViolation, "viewer too slow"
			case errViewerGone:
				return websocket.StatusNormalClosure, ""
			}
			return websocket.StatusGoingAway, "server shutting down"
		}
	}
}

// read passes the viewer's messages to run; bad ones are answered with an error message.
func (v *viewer) read() {
	for {
		_, b, err := v.ws.Read(v.ioctx)
		if err != nil {
			v.cancel(errViewerGone)
			return
		}
		m, err := decodeViewerMessage(b)
		if err != nil {
			v.send(map[string]any{"type": "error", "message": bb.MessageOf(err)})
			continue
		}
		select {
		case v.in <- m:
		case <-v.ctx.Done():
			// run has returned: keep reading (and dropping) until the close handshake ends.
		}
	}
}

// write sends queued messages and the newest frame to the viewer.
func (v *viewer) write() {
	for {
		var msg []byte
		typ := websocket.MessageText
		select {
		case msg = <-v.text:
		case <-v.frameSig:
			v.frameMu.Lock()
			f := v.frame
			v.frame = nil
			v.frameMu.Unlock()
			if f == nil {
				continue
			}
			msg, typ = f.data, websocket.MessageBinary
		case <-v.ioctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(v.ioctx, v.s.cfg.WriteTimeout)
		err := v.ws.Write(ctx, typ, msg)
		cancel()
		if err != nil {
			v.cancel(errViewerGone)
			return
		}
	}
}

// send queues a JSON message for the viewer. A viewer that lets 256 pile up is dropped.
func (v *viewer) send(m any) {
	b, err := json.Marshal(m)
	if err != nil {
		v.log.Error("encode viewer message", "err", err)
		return
	}
	select {
	case v.text <- b:
	default:
		v.cancel(errViewerSlow)
	}
}

func (v *viewer) call(method string, params, result any) error {
	return v.callOn(v.session, method, params, result)
}

func (v *viewer) callOn(session, method string, params, result any) error {
	ctx, cancel := context.WithTimeout(v.ctx, callWait)
	defer cancel()
	return v.cdp.call(ctx, session, method, params, result)
}

// refreshTabs reads the tabs' titles and URLs again: Chromium sends
// Target.targetInfoChanged when a URL changes but not when a page sets its title.
func (v *viewer) refreshTabs() {
	var targets struct {
		TargetInfos []targetInfo `json:"targetInfos"`
	}
	if err := v.callOn("", "Target.getTargets", nil, &targets); err != nil {
		return
	}
	changed := false
	for _, t := range targets.TargetInfos {
		if i := v.index(t.TargetID); i >= 0 && t.page() && (v.tabs[i].URL != t.URL || v.tabs[i].Title != t.Title) {
			v.tabs[i].URL, v.tabs[i].Title = t.URL, t.Title
			changed = true
		}
	}
	if changed {
		v.sendTabs()
	}
}

// setup learns the open tabs, subscribes to their changes and shows the first tab: page
// when it is open (the viewer was showing it), else the one in front. pin says the
// viewer chose page: new tabs are then not followed.
func (v *viewer) setup(page string, pin bool) error {
	var targets struct {
		TargetInfos []targetInfo `json:"targetInfos"`
	}
	if err := v.callOn("", "Target.getTargets", nil, &targets); err != nil {
		return err
	}
	for _, t := range targets.TargetInfos {
		if t.page() {
			v.tabs = append(v.tabs, tab{ID: t.TargetID, URL: t.URL, Title: t.Title})
		}
	}
	if err := v.callOn("", "Target.setDiscoverTargets", map[string]any{"discover": true}, nil); err != nil {
		return err
	}
	v.send(map[string]any{"type": "hello", "sessionId": v.t.SessionID, "readOnly": v.readOnly,
		"expires": v.t.Expires.UnixMilli()})
	if page != "" && v.index(page) >= 0 && v.show(page, pin) {
		v.pinned = pin
		return nil
	}
	v.showFront()
	return nil
}

// showFront shows the tab in front (the first of /json/list), or the newest one.
func (v *viewer) showFront() {
	ctx, cancel := context.WithTimeout(v.ctx, callWait)
	pages, err := listPages(ctx, v.t.BrowserURL)
	cancel()
	if err == nil {
		for _, id := range pages {
			if v.index(id) >= 0 && v.show(id, false) {
				return
			}
		}
	}
	for i := len(v.tabs) - 1; i >= 0; i-- {
		if v.show(v.tabs[i].ID, true) {
			return
		}
	}
	v.active = ""
	v.sendTabs()
}

// listPages returns the ids of a browser's pages from /json/list, in Chromium's order
// there: the most recently activated tab first.
func listPages(ctx context.Context, browserURL string) ([]string, error) {
	base, err := cdp.HTTPBase(browserURL)
	if err != nil {
		return nil, err
	}
	targets, err := cdp.List(ctx, base)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range targets {
		if t.Type == "page" && !strings.HasPrefix(t.URL, "devtools://") { // not workers, iframes, DevTools windows
			ids = append(ids, t.ID)
		}
	}
	return ids, nil
}

func (v *viewer) index(id string) int {
	for i, t := range v.tabs {
		if t.ID == id {
			return i
		}
	}
	return -1
}

func (v *viewer) sendTabs() {
	v.send(map[string]any{"type": "tabs", "active": v.active, "tabs": v.tabs})
}

// show attaches to a tab and starts its screencast. A hidden tab (behind another in its
// window) sends no frames: it is brought to the front when activate is set and the
// viewer may change the session (a read-only viewer never changes which tab is in
// front), else show leaves things as they were and returns false.
func (v *viewer) show(id string, activate bool) bool {
	activate = activate && !v.readOnly
	var res struct {
		SessionID string `json:"sessionId"`
	}
	if err := v.callOn("", "Target.attachToTarget", map[string]any{"targetId": id, "flatten": true}, &res); err != nil {
		v.log.Debug("attach to tab failed", "err", err)
		return false
	}
	var vis struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	err := v.callOn(res.SessionID, "Runtime.evaluate", map[string]any{
		"expression": "document.visibilityState", "returnByValue": true}, &vis)
	if !activate && err != nil {
		// The tab navigated (a new tab often does at once, to another process) or
		// closed while it was asked: a screencast started now would show nothing.
		// A new tab is tried again when it changes (follow).
		v.detach(res.SessionID)
		return false
	}
	if err == nil && vis.Result.Value == "hidden" {
		if !activate {
			v.detach(res.SessionID)
			return false
		}
		if err := v.callOn("", "Target.activateTarget", map[string]any{"targetId": id}, nil); err != nil {
			v.log.Debug("activate tab failed", "err", err)
		}
	}
	v.stopCast()
	if v.session != "" {
		v.detach(v.session)
	}
	v.active, v.session = id, res.SessionID
	v.sendTabs()
	v.startCast()
	return true
}

func (v *viewer) detach(session string) {
	// The target may be gone already, which detached it.
	_ = v.callOn("", "Target.detachFromTarget", map[string]any{"sessionId": session}, nil)
}

// handle acts on one viewer message.
func (v *viewer) handle(m viewerMsg) {
	if m.input() {
		v.input(m)
		return
	}
	switch m.Type {
	case "viewport":
		w, h := m.Width, m.Height
		if v.width == 0 || math.Abs(float64(w-v.width)) > 0.05*float64(v.width) || math.Abs(float64(h-v.height)) > 0.05*float64(v.height) {
			v.width, v.height = w, h
			v.restartCast()
		}
	case "ack":
		v.drawnFrame(m.Seq, true)
	case "pause":
		v.paused = true
		v.stopCast()
	case "resume":
		v.paused = false
		v.startCast()
	case "switch":
		if v.index(m.ID) >= 0 && m.ID != v.active {
			if v.show(m.ID, true) {
				v.pinned = true
			} else {
				v.sendTabs() // still showing the tab it was
			}
		}
	case "ping":
		v.send(map[string]any{"type": "pong", "seq": m.Seq})
	}
}

// event acts on one CDP event or tagged reply.
func (v *viewer) event(e cdp.Event) {
	switch e.Method {
	case "Page.screencastFrame":
		if e.SessionID == v.session && v.casting {
			v.onFrame(e.Params)
		}
	case "Target.targetCreated", "Target.targetInfoChanged":
		var p struct {
			TargetInfo targetInfo `json:"targetInfo"`
		}
		if json.Unmarshal(e.Params, &p) != nil || !p.TargetInfo.page() {
			return
		}
		t := p.TargetInfo
		if i := v.index(t.TargetID); i >= 0 {
			if t.TargetID == v.active && t.URL != v.tabs[i].URL {
				// A navigation may move the tab to another renderer process, whose
				// frames a screencast started before may never send, or may have made
				// the start fail (a new tab navigates at once): start it anew.
				v.stopCast()
				v.startCast()
			}
			v.tabs[i].URL, v.tabs[i].Title = t.URL, t.Title
			// A new tab may still be hidden when it is created (it comes to the front
			// a moment later): try again as it changes, until it shows.
			if t.TargetID == v.follow && t.TargetID != v.active && v.show(t.TargetID, false) {
				v.follow = ""
				return
			}
			v.sendTabs()
			return
		}
		v.tabs = append(v.tabs, tab{ID: t.TargetID, URL: t.URL, Title: t.Title})
		// Follow a new tab, as a browser brings one to the front, unless the viewer
		// picked a tab; a popup of the tab shown is followed in any case.
		if !v.pinned || (t.OpenerID != "" && t.OpenerID == v.active) {
			if v.show(t.TargetID, false) {
				v.follow = ""
				return
			}
			v.follow = t.TargetID
		}
		v.sendTabs()
	case "Target.targetDestroyed":
		var p struct {
			TargetID string `json:"targetId"`
		}
		if json.Unmarshal(e.Params, &p) != nil {
			return
		}
		if i := v.index(p.TargetID); i >= 0 {
			v.tabs = append(v.tabs[:i], v.tabs[i+1:]...)
		}
		if p.TargetID == v.active {
			v.lost()
			return
		}
		v.sendTabs()
	case "Target.detachedFromTarget":
		var p struct {
			SessionID string `json:"sessionId"`
		}
		if json.Unmarshal(e.Params, &p) == nil && p.SessionID == v.session {
			v.lost()
		}
	case replyEvent:
		v.inputDone(e)
	}
}

// lost moves on from a tab that closed or crashed.
func (v *viewer) lost() {
	v.casting = false
	v.stopCast()
	v.active, v.session, v.pinned = "", "", false
	v.showFront()
}
