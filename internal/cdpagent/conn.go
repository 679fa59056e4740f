package cdpagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// message is one CDP message: a command, its response or an event.
type message struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

// incoming is a message as read, with params left raw.
type incoming struct {
	ID        int64           `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *cdpError       `json:"error"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message) }

// errClosed is the error of calls on a closed connection.
var errClosed = errors.New("cdpagent: connection closed")

// result is the outcome of one command.
type result struct {
	raw json.RawMessage
	err error
}

// conn is a minimal CDP client over one websocket (flat sessions). Events go to onEvent,
// called in the read goroutine: it must not wait for a command's result.
type conn struct {
	ws      *websocket.Conn
	onEvent func(incoming)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan result
	err     error         // set when the read loop ends
	done    chan struct{} // closed when the read loop ends
	wmu     sync.Mutex    // one writer at a time
}

// dial connects to a DevTools websocket. The read goroutine ends when the connection
// closes (close, or the browser going away); close waits for it.
func dial(ctx context.Context, url string, onEvent func(incoming)) (*conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial devtools: %w", err)
	}
	ws.SetReadLimit(64 << 20) // CDP messages reach many MB; the default is 32 KiB
	c := &conn{ws: ws, onEvent: onEvent, pending: make(map[int64]chan result), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *conn) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		for id, ch := range c.pending {
			ch <- result{err: errClosed}
			delete(c.pending, id)
		}
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var data []byte
		_, data, err = c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m incoming
		if json.Unmarshal(data, &m) != nil {
			continue // not CDP; nothing to route it to
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				if m.Error != nil {
					ch <- result{err: m.Error}
				} else {
					ch <- result{raw: m.Result}
				}
			}
			continue
		}
		if m.Method != "" && c.onEvent != nil {
			c.onEvent(m)
		}
	}
}

// send writes a command without waiting; the channel gets its result once.
func (c *conn) send(ctx context.Context, sessionID, method string, params any) <-chan result {
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.err != nil || isDone(c.done) {
		c.mu.Unlock()
		ch <- result{err: errClosed}
		return ch
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	data, err := json.Marshal(message{ID: id, SessionID: sessionID, Method: method, Params: params})
	if err == nil {
		c.wmu.Lock()
		err = c.ws.Write(ctx, websocket.MessageText, data)
		c.wmu.Unlock()
	}
	if err != nil {
		c.mu.Lock()
		if _, ok := c.pending[id]; ok {
			delete(c.pending, id)
			ch <- result{err: fmt.Errorf("send %s: %w", method, err)}
		}
		c.mu.Unlock()
	}
	return ch
}

// call sends a command and waits for its result, decoded into out when not nil.
func (c *conn) call(ctx context.Context, sessionID, method string, params, out any) error {
	select {
	case r := <-c.send(ctx, sessionID, method, params):
		if r.err != nil {
			return fmt.Errorf("%s: %w", method, r.err)
		}
		if out != nil {
			if err := json.Unmarshal(r.raw, out); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close closes the websocket and waits for the read goroutine.
func (c *conn) close() {
	// An error means the browser already dropped the connection: it is gone either way.
	c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
