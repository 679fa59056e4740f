package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"
)

// errClosed is returned by calls on a connection that has ended.
var errClosed = errors.New("recorder: cdp connection closed")

// message is any CDP message: a response (ID set) or an event. It is decoded in one
// pass: params has the fields of the events the recorder handles.
type message struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    eventParams     `json:"params"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
}

// eventParams are the params of the events the recorder reads: Target.attachedToTarget
// and Runtime.bindingCalled. Others decode to zero values.
type eventParams struct {
	SessionID  string `json:"sessionId"`
	TargetInfo struct {
		Type string `json:"type"`
	} `json:"targetInfo"`
	WaitingForDebugger bool   `json:"waitingForDebugger"`
	Name               string `json:"name"`
	Payload            string `json:"payload"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message) }

// conn is a CDP client connection to a browser-level DevTools websocket. Calls may run
// from any goroutine; events go to onEvent, called from the read loop. A message larger
// than limit is read through without being kept and reported to onOversize instead.
type conn struct {
	ws         *websocket.Conn
	limit      int64
	onEvent    func(m *message)
	onOversize func(size int64, head []byte)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan *message
	err     error // set when the read loop ended
	done    chan struct{}
}

// dial connects to url; the read loop runs until the connection ends (close). Messages
// over limit bytes go to onOversize, with their first bytes.
func dial(ctx context.Context, url string, limit int64, onEvent func(*message), onOversize func(int64, []byte)) (*conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial devtools: %w", err)
	}
	// No websocket limit: reaching it closes the connection, and a page must not be able
	// to end its own recording. The read loop enforces limit per message instead.
	ws.SetReadLimit(-1)
	c := &conn{ws: ws, limit: limit, onEvent: onEvent, onOversize: onOversize, pending: map[int64]chan *message{}, done: make(chan struct{})}
	go c.readLoop() // exits when ws is closed; close waits for it
	return c, nil
}

// headSize is how much of an oversized message onOversize gets: enough for its method.
const headSize = 256

func (c *conn) readLoop() {
	defer close(c.done)
	ctx := context.Background()
	var buf bytes.Buffer
	for {
		size, err := c.readMessage(ctx, &buf)
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
		if size > c.limit {
			c.onOversize(size, buf.Bytes())
			continue
		}
		m := new(message)
		if json.Unmarshal(buf.Bytes(), m) != nil {
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

// readMessage reads the next message into buf when it is at most c.limit bytes; a
// larger one is read through, buf keeping only its first headSize bytes. It returns the
// message's size.
func (c *conn) readMessage(ctx context.Context, buf *bytes.Buffer) (int64, error) {
	if buf.Cap() > 1<<20 {
		*buf = bytes.Buffer{} // let a large message's buffer go
	}
	buf.Reset()
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyN(buf, r, c.limit+1)
	if err == io.EOF {
		return n, nil
	} else if err != nil {
		return 0, err
	}
	rest, err := io.Copy(io.Discard, r) // the reader must be read to its end
	if err != nil {
		return 0, err
	}
	buf.Truncate(min(headSize, buf.Len()))
	return n + rest, nil
}

// call sends a command and waits for its result, which it decodes into result (if not nil).
func (c *conn) call(ctx context.Context, sessionID, method string, params any, result any) error {
	wait, err := c.send(ctx, sessionID, method, params)
	if err != nil {
		return err
	}
	return wait(ctx, result)
}

// send writes a command and returns at once; wait waits for its answer and decodes
// its result into result (nil: none). Commands are written in the order send is
// called, and Chromium runs the commands of one session in that order.
func (c *conn) send(ctx context.Context, sessionID, method string, params any) (wait func(ctx context.Context, result any) error, err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
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
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return func(ctx context.Context, result any) error {
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
	}, nil
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
