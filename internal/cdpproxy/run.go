package cdpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// stopper is a reason to end a relay from outside: when ch is closed, the client gets
// a close frame with the code and reason that why returns. A nil ch never fires.
type stopper struct {
	what string // for logs
	ch   <-chan struct{}
	why  func() (closeCode, string)
}

// endCause says why a relay ended, for logs.
type endCause struct {
	what string    // "client closed", "browser closed", "session ended", …
	code closeCode // the close code the relay sent the client, or 0
	err  error     // the I/O or protocol error behind it, if any
}

// pumps tracks the two pump goroutines of a relay.
type pumps struct {
	c2s, s2c         chan error
	c2sDone, s2cDone bool
	wg               sync.WaitGroup
}

// maxStoppers is how many stoppers a relay watches.
const maxStoppers = 4

// run relays until one side closes or fails, a stopper fires (the session ends, the
// gateway shuts down, …) or the client is idle, then closes both connections. It
// returns once both pump goroutines, which it owns, have exited. browserGone gives the
// close frame for a browser connection that dropped without one. It watches the first
// maxStoppers stoppers.
func (rl *relay) run(browserGone func() (closeCode, string), stops ...stopper) endCause {
	var st [maxStoppers]stopper
	copy(st[:], stops)
	p := &pumps{c2s: make(chan error, 1), s2c: make(chan error, 1)}
	p.wg.Go(func() { p.c2s <- rl.clientToBrowser() })
	p.wg.Go(func() { p.s2c <- rl.browserToClient() })
	defer p.wg.Wait()

	var idle <-chan time.Time
	var t *time.Timer
	if rl.cfg.idle > 0 {
		t = time.NewTimer(rl.cfg.idle)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case err := <-p.c2s:
			p.c2sDone = true
			return rl.clientDone(p, err, browserGone)
		case err := <-p.s2c:
			p.s2cDone = true
			return rl.browserDone(p, err, browserGone)
		case <-st[0].ch:
			return rl.stop(p, st[0])
		case <-st[1].ch:
			return rl.stop(p, st[1])
		case <-st[2].ch:
			return rl.stop(p, st[2])
		case <-st[3].ch:
			return rl.stop(p, st[3])
		case <-idle:
			// The timer started at the previous check; the client may have been
			// active since. Idle time counts from its last data frame.
			since := time.Since(rl.start) - time.Duration(rl.lastActive.Load())
			if since >= rl.cfg.idle {
				return rl.shutdown(p, endCause{what: "idle timeout", code: closeNormal}, "idle timeout", false)
			}
			t.Reset(rl.cfg.idle - since)
		}
	}
}

// stop ends a relay for a stopper that fired.
func (rl *relay) stop(p *pumps, s stopper) endCause {
	code, reason := s.why()
	return rl.shutdown(p, endCause{what: s.what, code: code}, reason, false)
}

// clientDone ends a relay whose client→browser pump stopped with err.
func (rl *relay) clientDone(p *pumps, err error, browserGone func() (closeCode, string)) endCause {
	if fe, ok := errors.AsType[*frameError](err); ok {
		what := "client protocol error"
		if fe.code == closePolicyViolation || fe.code == closeInvalidData || fe.code == closeTooBig || fe.code == closeUnsupported {
			what = "client message refused"
		}
		return rl.shutdown(p, endCause{what: what, code: fe.code, err: err}, fe.msg, false)
	}
	if pe, ok := errors.AsType[*peerError](err); ok && pe.peer == peerBrowser {
		code, reason := browserGone()
		return rl.shutdown(p, endCause{what: "browser closed", code: code, err: quiet(err)}, reason, false)
	}
	return rl.shutdown(p, endCause{what: "client closed", err: quiet(err)}, "", true)
}

// browserDone ends a relay whose browser→client pump stopped with err.
func (rl *relay) browserDone(p *pumps, err error, browserGone func() (closeCode, string)) endCause {
	if pe, ok := errors.AsType[*peerError](err); ok && pe.peer == peerClient {
		return rl.shutdown(p, endCause{what: "client closed", err: quiet(err)}, "", true)
	}
	if rl.closeToClient { // the browser closed cleanly; the client answers
		return rl.shutdown(p, endCause{what: "browser closed", err: quiet(err)}, "", false)
	}
	code, reason := browserGone()
	if _, ok := errors.AsType[*frameError](err); ok {
		code, reason = closeInternalError, "protocol error from the browser"
	}
	return rl.shutdown(p, endCause{what: "browser closed", code: code, err: quiet(err)}, reason, false)
}

// quiet drops the errors of an ordinary end: EOF, a reset, or a connection we closed.
func quiet(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return nil
	}
	return err
}

// shutdown ends a relay: it closes the browser connection, waits for the
// browser→client pump, sends the client a close frame with c.code (unless c.code is 0,
// the client is gone, or a close frame already went out), gives the client closeWait
// to answer, and closes the client connection.
func (rl *relay) shutdown(p *pumps, c endCause, reason string, clientGone bool) endCause {
	// From here, writes to the client get closeWait in all: a client that stopped
	// reading cannot delay the end by a full write timeout.
	rl.cdw.freeze(time.Now().Add(rl.cfg.closeWait))
	_ = rl.browser.Close() // an error only means it was closed already
	if clientGone {
		_ = rl.client.Close()
	}
	if !p.s2cDone {
		<-p.s2c // a consequence of the closes above; its error says nothing new
		p.s2cDone = true
	}
	if !clientGone {
		sent := false
		if c.code != 0 && !rl.midFrame && !rl.closeToClient {
			frame := appendCloseFrame(nil, c.code, reason)
			_, err := rl.client.Write(frame)
			sent = err == nil
			rl.closeToClient = sent
			if sent {
				rl.browserBytes.Add(int64(len(frame)))
			}
		}
		if !sent {
			c.code = 0
		}
		if !p.c2sDone && rl.closeToClient {
			// Wait for the client's close frame; forwarding it fails, which ends
			// the pump, as does the deadline.
			_ = rl.client.SetReadDeadline(time.Now().Add(rl.cfg.closeWait))
			<-p.c2s
			p.c2sDone = true
		}
		_ = rl.client.Close()
	}
	if !p.c2sDone {
		<-p.c2s
		p.c2sDone = true
	}
	return c
}
