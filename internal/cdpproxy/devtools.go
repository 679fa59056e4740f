package cdpproxy

import (
	"net/http"
	"time"

	bb "github.com/browserd/browserd"
)

// Close codes of the live view (internal/liveview), which its page and DevTools
// connections share.
const (
	closeLiveExpired closeCode = 4401 // the live view token expired
	closeLiveEnded   closeCode = 4410 // the session ended
)

// RelayDevTools relays a live view's DevTools websocket (the upgrade request r) to url,
// a websocket of t's browser (the browser's own or one page's), under the rules of
// connectUrl: message size limits, the confinement of download and upload paths
// (bb.ConfineCDPCommand), Browser.close ending the session COMPLETED, and the
// per-session connection cap. The caller has checked the live view token and that it
// may send commands. The connection closes with 4410 when the session ends, 4401 when
// the token expires, 1001 when done is closed or the gateway shuts down. Its commands
// are not written to the session's logs, and it never ends the session when it leaves
// (live views are not CDP clients of the session).
func (g *Gateway) RelayDevTools(w http.ResponseWriter, r *http.Request, t *bb.LiveTarget, url string, done <-chan struct{}) {
	key, err := checkUpgrade(r)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	if !g.enter() {
		g.writeError(w, r, bb.Errorf(bb.CodeUnavailable, "the server is shutting down"))
		return
	}
	defer g.wg.Done()
	c := &conn{sessionID: t.SessionID, att: liveAttachment{t}}
	c.endClose = func() (closeCode, string) { return closeLiveEnded, "session ended" }
	expired := make(chan struct{})
	timer := time.AfterFunc(time.Until(t.Expires), func() { close(expired) })
	defer timer.Stop()
	g.relay(w, r, key, c, url, false, 0,
		stopper{what: "session ended", ch: t.Ended(), why: c.endClose},
		stopper{what: "live view expired", ch: expired, why: func() (closeCode, string) { return closeLiveExpired, "live view link expired" }},
		stopper{what: "live view closed", ch: done, why: func() (closeCode, string) { return closeGoingAway, "server shutting down" }})
}

// liveAttachment is a live view's DevTools connection seen as an attachment: it
// neither keeps the session alive nor ends it.
type liveAttachment struct{ t *bb.LiveTarget }

func (a liveAttachment) Ended() <-chan struct{}                { return a.t.Ended() }
func (a liveAttachment) EndReason() (bb.SessionStatus, string) { return "", "" }
func (a liveAttachment) BrowserClosing()                       { a.t.BrowserClosing() }
func (a liveAttachment) Detach()                               {}
