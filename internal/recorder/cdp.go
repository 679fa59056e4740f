package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// errClosed is returned by calls on a connection that has ended.
var errClosed = errors.New("recorder: cdp connection closed")

// message is any CDP message: a response (ID set) or an event.
type message struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message) }

// conn is a CDP client connection to a browser-level DevTools websocket. Calls may run
// from any goroutine; events go to onEvent, called from the read loop.
type conn struct {
	ws      *websocket.Conn
	onEvent func(m *message)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan *message
	err     error // set when the read loop ended
	done    chan struct{}
}

// dial connects to url; the read loop runs until the connection ends (close).
func dial(ctx context.Context, url string, onEvent func(*message)) (*conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial devtools: %w", err)
	}
	ws.SetReadLimit(-1) // rrweb snapshots of large pages are many MB
	c := &conn{ws: ws, onEvent: onEvent, pending: map[int64]chan *message{}, done: make(chan struct{})}
	go c.readLoop() // exits when ws is closed; close waits for it
	return c, nil
}

func (c *conn) readLoop() {
	defer close(c.done)
	ctx := context.Background()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.err = errClosed
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		m := new(message)
		if json.Unmarshal(b, m) != nil {
			continue
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		c.onEvent(m)
	}
}

// call sends a command and waits for its result, which it decodes into result (if not nil).
func (c *conn) call(ctx context.Context, sessionID, method string, params any, result any) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan *message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	req := struct {
		ID        int64  `json:"id"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
		SessionID string `json:"sessionId,omitempty"`
	}{id, method, params, sessionID}
	b, err := json.Marshal(req)
	if err == nil {
		err = c.ws.Write(ctx, websocket.MessageText, b)
	}
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: %w", method, errClosed)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %w", method, m.Error)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *conn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// close ends the connection and waits for the read loop.
func (c *conn) close() {
	_ = c.ws.CloseNow() // an error means it was closed already
	<-c.done
}
