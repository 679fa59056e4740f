package liveview

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/browserd/browserd/internal/cdp"
)

// maxQueuedEvents bounds the events a cdpConn holds for a consumer that stopped
// taking them. Screencast frames are bounded by acks, so only a stuck consumer gets here.
const maxQueuedEvents = 10000

// errBacklog ends a browser connection whose events the viewer stopped taking.
var errBacklog = errors.New("cdp event backlog")

// cdpConn is a viewer's connection to a browser-level DevTools websocket, with flattened
// target sessions. Its events, and the answers to tagged commands, are queued (see
// maxQueuedEvents) for the viewer's loop, which takes them after notify: the read
// goroutine never waits for the viewer, so the viewer may make calls while it handles
// events.
type cdpConn struct {
	notify chan struct{} // 1-buffered: events were queued

	mu     sync.Mutex
	conn   *cdp.Conn // set once dialCDP has it; read under mu by onEvent only
	events []cdp.Event
}

// dialCDP connects to a browser's DevTools websocket. Its read goroutine ends when the
// connection does; close ends it and waits.
func dialCDP(ctx context.Context, url string) (*cdpConn, error) {
	c := &cdpConn{notify: make(chan struct{}, 1)}
	conn, err := cdp.Dial(ctx, url, cdp.Options{OnEvent: c.onEvent})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	return c, nil
}

// onEvent queues an event; it runs on the read goroutine.
func (c *cdpConn) onEvent(e cdp.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Before dialCDP returns there is no consumer to be stuck: conn is nil only then.
	if len(c.events) >= maxQueuedEvents && c.conn != nil {
		// The backlog means a stuck consumer: drop the browser connection, which
		// ends the viewer too.
		c.conn.Abort(errBacklog)
		return
	}
	c.queue(e)
}

// queue adds an event for the consumer; c.mu is held.
func (c *cdpConn) queue(e cdp.Event) {
	c.events = append(c.events, e)
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// takeEvents returns and forgets the queued events.
func (c *cdpConn) takeEvents() []cdp.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// call sends a command and waits for its answer, decoded into result when not nil.
func (c *cdpConn) call(ctx context.Context, sessionID, method string, params, result any) error {
	return c.conn.Call(ctx, sessionID, method, params, result)
}

// replyEvent is the Method of the event that reports the answer to a tagged command;
// the event's SessionID is the tag, its Params {"failed":true} when the command failed.
const replyEvent = "liveview.reply"

// start sends a command without waiting. With a tag, its answer is queued as a
// replyEvent; without one it is dropped, as are the answers of a connection that
// ended. Answers are not counted against maxQueuedEvents: there is one per command the
// viewer's loop sends, which stops with the loop.
func (c *cdpConn) start(ctx context.Context, sessionID, method string, params any, tag string) error {
	var done func(json.RawMessage, error)
	if tag != "" {
		done = func(_ json.RawMessage, err error) {
			if errors.Is(err, cdp.ErrClosed) {
				return // the viewer ends with the connection
			}
			var failed json.RawMessage
			if err != nil {
				failed = json.RawMessage(`{"failed":true}`)
			}
			c.mu.Lock()
			c.queue(cdp.Event{Method: replyEvent, SessionID: tag, Params: failed})
			c.mu.Unlock()
		}
	}
	return c.conn.Send(ctx, sessionID, method, params, done)
}

// done is closed when the connection has ended.
func (c *cdpConn) done() <-chan struct{} { return c.conn.Done() }

// close closes the connection and waits for the read goroutine.
func (c *cdpConn) close() { c.conn.Close() }
