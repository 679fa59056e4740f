package liveview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// maxCDPMessage is the read limit on browser connections: screencast frames and DevTools
// messages reach several MB (research/chromium-limits.md §5: the default is 32 KiB).
const maxCDPMessage = 256 << 20

// maxQueuedEvents bounds the events a cdpConn holds for a consumer that stopped
// taking them. Screencast frames are bounded by acks, so only a stuck consumer gets here.
const maxQueuedEvents = 10000

// cdpEvent is a CDP event; SessionID names the flattened target session, "" for the browser.
type cdpEvent struct {
	Method    string
	SessionID string
	Params    json.RawMessage
}

// cdpError is an error answered by the browser.
type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message) }

type cdpReply struct {
	result json.RawMessage
	err    error
}

// errCDPClosed is the error of calls on a closed connection.
var errCDPClosed = errors.New("cdp connection closed")

// cdpConn is a CDP client on a browser-level DevTools websocket, with flattened target
// sessions. Its read loop never waits for the consumer: events are queued (see
// maxQueuedEvents), so a consumer may make calls while it handles events.
type cdpConn struct {
	ws     *websocket.Conn
	nextID atomic.Int64
	done   chan struct{} // closed when the read loop has ended
	notify chan struct{} // 1-buffered: events were queued

	mu      sync.Mutex
	pending map[int64]pendingCall
	events  []cdpEvent
	err     error // why the read loop ended; set before done is closed
}

// dialCDP connects to a browser's DevTools websocket. The read loop it starts ends when
// the connection does; close ends it and waits.
func dialCDP(ctx context.Context, url string) (*cdpConn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial browser: %w", err)
	}
	ws.SetReadLimit(maxCDPMessage)
	c := &cdpConn{
		ws:      ws,
		done:    make(chan struct{}),
		notify:  make(chan struct{}, 1),
		pending: make(map[int64]pendingCall),
	}
	go c.readLoop() // exits when ws fails or is closed; close waits for it
	return c, nil
}

func (c *cdpConn) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		for id, p := range c.pending {
			if p.ch != nil {
				p.ch <- cdpReply{err: errCDPClosed}
			}
			delete(c.pending, id)
		}
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var b []byte
		if _, b, err = c.ws.Read(context.Background()); err != nil {
			return
		}
		var m struct {
			ID        int64           `json:"id"`
			Method    string          `json:"method"`
			SessionID string          `json:"sessionId"`
			Params    json.RawMessage `json:"params"`
			Result    json.RawMessage `json:"result"`
			Error     *cdpError       `json:"error"`
		}
		if json.Unmarshal(b, &m) != nil {
			continue // not CDP; nothing to answer
		}
		c.mu.Lock()
		if m.ID != 0 {
			p, ok := c.pending[m.ID]
			delete(c.pending, m.ID)
			switch {
			case ok && p.ch != nil:
				r := cdpReply{result: m.Result}
				if m.Error != nil {
					r.err = m.Error
				}
				p.ch <- r // buffered
			case ok && p.tag != "":
				var failed json.RawMessage
				if m.Error != nil {
					failed = json.RawMessage(`{"failed":true}`)
				}
				err = c.queue(cdpEvent{Method: replyEvent, SessionID: p.tag, Params: failed})
			}
		} else if m.Method != "" {
			err = c.queue(cdpEvent{Method: m.Method, SessionID: m.SessionID, Params: m.Params})
		}
		if err != nil {
			c.mu.Unlock()
			// The backlog means a stuck consumer: drop the browser connection, which
			// ends the viewer too. Its close error adds nothing.
			_ = c.ws.CloseNow()
			return
		}
		c.mu.Unlock()
	}
}

// queue adds an event for the consumer; c.mu is held.
func (c *cdpConn) queue(e cdpEvent) error {
	if len(c.events) >= maxQueuedEvents {
		return errors.New("cdp event backlog")
	}
	c.events = append(c.events, e)
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// takeEvents returns and forgets the queued events.
func (c *cdpConn) takeEvents() []cdpEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// call sends a command and waits for its answer, decoded into result when not nil.
func (c *cdpConn) call(ctx context.Context, sessionID, method string, params, result any) error {
	ch := make(chan cdpReply, 1)
	if err := c.send(ctx, sessionID, method, params, pendingCall{ch: ch}); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("%s: %w", method, r.err)
		}
		if result != nil {
			if err := json.Unmarshal(r.result, result); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// replyEvent is the Method of the event that reports the answer to a tagged command;
// the event's SessionID is the tag, its Params {"failed":true} when the command failed.
const replyEvent = "liveview.reply"

// pendingCall is where the answer to a command goes: ch, or an event tagged tag, or
// nowhere when both are empty.
type pendingCall struct {
	ch  chan cdpReply // buffered
	tag string
}

// start sends a command without waiting. With a tag, its answer is queued as a
// replyEvent; without one it is dropped.
func (c *cdpConn) start(ctx context.Context, sessionID, method string, params any, tag string) error {
	return c.send(ctx, sessionID, method, params, pendingCall{tag: tag})
}

func (c *cdpConn) send(ctx context.Context, sessionID, method string, params any, p pendingCall) error {
	id := c.nextID.Add(1)
	msg, err := json.Marshal(struct {
		ID        int64  `json:"id"`
		SessionID string `json:"sessionId,omitempty"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
	}{id, sessionID, method, params})
	if err != nil {
		return fmt.Errorf("%s: encode: %w", method, err)
	}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return errCDPClosed
	default:
	}
	if p.ch != nil || p.tag != "" {
		c.pending[id] = p
	}
	c.mu.Unlock()
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// close closes the connection and waits for the read loop.
func (c *cdpConn) close() {
	// A close that fails leaves the connection closed all the same.
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}
