package cdp

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

// DefaultReadLimit is the largest message a Conn reads unless Options.ReadLimit says
// otherwise: 256 MiB. Chromium's messages are large: a full-page PNG screenshot of a tall
// page is tens of MB of base64 in one answer, and DevTools frontends exchange heap
// snapshots in chunks of several MB (research/chromium-limits.md §5). The websocket
// library's own default, 32 KiB, would end the connection at the first such message.
// 256 MiB fits every message browserd and its bench have met with room to spare, and
// still bounds what one connection may make this process hold.
const DefaultReadLimit = 256 << 20

// ErrClosed is the error, wrapped, of commands on a connection that has ended, and of
// Err once it has.
var ErrClosed = errors.New("cdp: connection closed")

// Options configure a Conn.
type Options struct {
	// ReadLimit is the size in bytes of the largest message read [DefaultReadLimit].
	// A larger message ends the connection, unless OnOversize is set.
	ReadLimit int64
	// OnEvent gets every event, on the connection's read goroutine, in the order the
	// browser sent them and the answers to Send. It must not wait for the answer to a
	// command (nothing is read while it runs); it may send commands. Nil drops events.
	OnEvent func(Event)
	// OnOversize, when set, gets each message over ReadLimit instead of the connection
	// ending: its size and its first bytes (up to 256, enough for its method). The
	// message is read through and dropped. It runs on the read goroutine, as OnEvent;
	// head is valid only until it returns.
	OnOversize func(size int64, head []byte)
}

// headSize is how much of an oversized message OnOversize gets.
const headSize = 256

// reuseLimit is the size above which the read buffer is let go after a message rather
// than kept for the next one: a screenshot's buffer should not outlive it.
const reuseLimit = 1 << 20

// Conn is a CDP client on one DevTools websocket, browser-level or a page's. Commands
// may be sent from any goroutine, and Chromium's flattened target sessions are named by
// the sessionID of each command and event. One goroutine reads the connection until it
// ends; Close ends it and waits for that goroutine.
type Conn struct {
	ws   *websocket.Conn
	opts Options
	done chan struct{} // closed when the read goroutine has ended

	mu      sync.Mutex
	nextID  int64
	pending map[int64]func(json.RawMessage, error) // nil once the connection has ended
	abort   error                                  // why Abort ended the connection
	err     error                                  // why it ended; set before done is closed
}

// Dial connects to a DevTools websocket (ws://127.0.0.1:PORT/devtools/browser/<id> or
// …/devtools/page/<id>). ctx bounds only the dial.
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial devtools: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial devtools: %w", err)
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	// The limit is enforced per message by the read loop, which can read an oversized
	// one through (OnOversize); the websocket's own would end the connection.
	ws.SetReadLimit(-1)
	c := &Conn{ws: ws, opts: opts, done: make(chan struct{}), pending: make(map[int64]func(json.RawMessage, error))}
	go c.readLoop() // ends when the connection does; Close waits for it
	return c, nil
}

func (c *Conn) readLoop() {
	cause := c.read()
	c.mu.Lock()
	if c.abort != nil {
		cause = c.abort
	}
	c.err = fmt.Errorf("%w: %w", ErrClosed, cause)
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, done := range pending {
		done(nil, c.err)
	}
	close(c.done)
}

// read reads and routes messages until the connection fails.
func (c *Conn) read() error {
	ctx := context.Background() // the connection's end ends the read
	var buf bytes.Buffer
	for {
		size, err := c.readMessage(ctx, &buf)
		if err != nil {
			return err
		}
		if size > c.opts.ReadLimit {
			if c.opts.OnOversize == nil {
				_ = c.ws.CloseNow() // the message is read no further; the error says why
				return fmt.Errorf("message of over %d bytes (read limit)", c.opts.ReadLimit)
			}
			c.opts.OnOversize(size, buf.Bytes())
			continue
		}
		data := buf.Bytes()
		// A large buffer is let go by the next readMessage: data is the message's own
		// then, and nothing need be copied out of it.
		owned := buf.Cap() > reuseLimit
		m, err := decode(data)
		if err != nil {
			continue // not CDP; nothing to route it to
		}
		keep := func(raw json.RawMessage) json.RawMessage {
			if owned || raw == nil {
				return raw
			}
			return bytes.Clone(raw)
		}
		if m.ID != 0 {
			c.mu.Lock()
			done := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if done == nil {
				continue // sent without a callback, or given up on
			}
			if m.Error != nil {
				done(nil, m.Error)
			} else {
				done(keep(m.Result), nil)
			}
			continue
		}
		if m.Method != "" && c.opts.OnEvent != nil {
			c.opts.OnEvent(Event{SessionID: m.SessionID, Method: m.Method, Params: keep(m.Params)})
		}
	}
}

// readMessage reads the next message into buf when it is at most the read limit; a
// larger one is read through only when OnOversize is set, buf keeping its first
// headSize bytes. It returns the message's size (at least limit+1 for a larger one).
func (c *Conn) readMessage(ctx context.Context, buf *bytes.Buffer) (int64, error) {
	if buf.Cap() > reuseLimit {
		*buf = bytes.Buffer{} // let a large message's buffer go
	}
	buf.Reset()
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyN(buf, r, c.opts.ReadLimit+1)
	if err == io.EOF {
		return n, nil
	} else if err != nil {
		return 0, err
	}
	if c.opts.OnOversize == nil {
		return n, nil
	}
	rest, err := io.Copy(io.Discard, r) // the reader must be read to its end
	if err != nil {
		return 0, err
	}
	buf.Truncate(min(headSize, buf.Len()))
	return n + rest, nil
}

// request is a command as written.
type request struct {
	ID        int64  `json:"id"`
	SessionID string `json:"sessionId,omitempty"`
	Method    string `json:"method"`
	Params    any    `json:"params,omitempty"`
}

// Send writes a command to the target session sessionID ("" for the browser) and
// returns once it is written, without waiting for the answer. When Send returns nil,
// done (if not nil) is called exactly once, on the read goroutine and in order with
// OnEvent: with the answer's raw result, or with its error (a *Error, or one wrapping
// ErrClosed when the connection ends first). It must not wait for another answer.
// Commands sent one after another are written in that order, and Chromium runs the
// commands of one session in the order it reads them.
func (c *Conn) Send(ctx context.Context, sessionID, method string, params any, done func(result json.RawMessage, err error)) error {
	_, err := c.send(ctx, sessionID, method, params, done)
	return err
}

func (c *Conn) send(ctx context.Context, sessionID, method string, params any, done func(json.RawMessage, error)) (int64, error) {
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return 0, fmt.Errorf("%s: %w", method, err)
	}
	c.nextID++
	id := c.nextID
	if done != nil {
		c.pending[id] = done
	}
	c.mu.Unlock()
	msg, err := json.Marshal(request{ID: id, SessionID: sessionID, Method: method, Params: params})
	if err != nil {
		err = fmt.Errorf("%s: encode: %w", method, err)
	} else if err = c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		err = fmt.Errorf("%s: %w", method, err)
	}
	if err != nil && (done == nil || c.forget(id)) {
		return 0, err
	}
	// Written, or failed as the connection ended, whose end gives done its error.
	return id, nil
}

// forget drops the command id's callback; false when it was called or is being called.
func (c *Conn) forget(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// Call sends a command and waits for its answer, whose result it decodes into result
// (nil: none). A *json.RawMessage result gets the raw result as read, neither copied
// nor scanned again. The error wraps a *Error when the browser answered one, and
// ErrClosed when the connection ended first. When ctx ends first, the answer is
// dropped when it comes.
func (c *Conn) Call(ctx context.Context, sessionID, method string, params, result any) error {
	type reply struct {
		raw json.RawMessage
		err error
	}
	ch := make(chan reply, 1)
	id, err := c.send(ctx, sessionID, method, params, func(raw json.RawMessage, err error) { ch <- reply{raw, err} })
	if err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("%s: %w", method, r.err)
		}
		switch out := result.(type) {
		case nil:
		case *json.RawMessage:
			*out = r.raw
		default:
			if err := json.Unmarshal(r.raw, out); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Done is closed when the connection has ended: closed by either side or failed. By
// then every command waiting for an answer has failed with ErrClosed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, wrapping ErrClosed; nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection with a close handshake and waits for the read goroutine:
// no callback runs after it returns. It must not be called from a callback (see Abort).
func (c *Conn) Close() {
	// An error means the connection had ended already: it is closed either way.
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// CloseNow closes the connection without a close handshake, for a browser that is
// going away or a peer that need not be told, and waits for the read goroutine as Close.
func (c *Conn) CloseNow() {
	_ = c.ws.CloseNow() // an error means it was closed already
	<-c.done
}

// Abort ends the connection at once with err as its cause (Err wraps it) and returns
// without waiting: it is the way for a callback, which runs on the read goroutine, to
// end the connection (say, for a consumer too far behind). Close must still be called.
func (c *Conn) Abort(err error) {
	c.mu.Lock()
	if c.abort == nil {
		c.abort = err
	}
	c.mu.Unlock()
	_ = c.ws.CloseNow() // an error means it was closed already
}
