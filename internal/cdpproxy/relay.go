package cdpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// hooks let the gateway see, and change, what it relays. All are optional.
type hooks struct {
	// client is called with each complete client text message of at most the relay's
	// inspect limit, unmasked, and what the scanner read of it, before it is
	// forwarded. Its verdict forwards the message (byte for byte when it came in one
	// frame), a replacement, or refuses it. msg is valid only during the call;
	// v.out is copied before the relay reads on. A message the scanner refuses
	// (scan.go) never gets here: it closes the connection.
	client func(msg []byte, cmd command) verdict
	// clientStreamed is called for a larger client text message, which is relayed as
	// it comes but scanned on the way: once its last byte but one has gone to the
	// browser, with what the scanner read, the first bytes of the message (up to
	// headMax) and its size. A refusal closes both connections before the browser
	// has the whole message, so it never acts on it; a replacement is ignored.
	clientStreamed func(cmd command, head []byte, size int64) verdict
	// browser is called with each complete data message from the browser after it
	// has been forwarded, cut to the relay's observe limit; size is the whole
	// message's length (larger than len(msg) when it was cut). msg is valid only
	// during the call. When browser is nil, browser frames are forwarded without any
	// copy.
	browser func(op opcode, msg []byte, size int64)
}

// verdict is what a client hook decides about a message.
type verdict struct {
	out    []byte      // a replacement message; nil forwards the message as it is
	refuse *frameError // close the connection with this code and reason instead
}

// peer names one side of a relay.
type peer string

const (
	peerClient  peer = "client"
	peerBrowser peer = "browser"
)

// peerError is an I/O error on one side of a relay.
type peerError struct {
	peer peer
	err  error
}

func (e *peerError) Error() string { return fmt.Sprintf("%s connection: %v", e.peer, e.err) }
func (e *peerError) Unwrap() error { return e.err }

// deadlineWriter writes to a connection with a write deadline, so that a peer that
// stops reading cannot hold a relay forever. The deadline is moved at most every
// timeout/8, which keeps SetWriteDeadline off the per-message path. Write is called by
// one goroutine; freeze may be called from another.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	set     time.Time // when Write last moved the deadline

	mu     sync.Mutex
	frozen bool // freeze set the final deadline
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.timeout > 0 {
		if now := time.Now(); now.Sub(d.set) > d.timeout/8 {
			d.set = now
			d.mu.Lock()
			var err error
			if !d.frozen {
				err = d.conn.SetWriteDeadline(now.Add(d.timeout))
			}
			d.mu.Unlock()
			if err != nil {
				return 0, err
			}
		}
	}
	return d.conn.Write(p)
}

// freeze sets a last write deadline, which Write no longer moves.
func (d *deadlineWriter) freeze(deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozen = true
	_ = d.conn.SetWriteDeadline(deadline) // fails only on a closed conn, where writes fail too
}

// relayConfig are a relay's limits and timeouts.
type relayConfig struct {
	// maxMessage limits client frames and messages (1009 beyond).
	maxMessage int64
	// inspectMax is the largest client text message assembled for hooks.client;
	// larger ones are streamed to the browser and scanned on the way
	// (hooks.clientStreamed). 0 assembles up to maxMessage.
	inspectMax int64
	// headMax is how much of a streamed client message hooks.clientStreamed sees.
	headMax int
	// observeMax is the part of a browser message given to hooks.browser [maxMessage].
	observeMax int64
	// idle closes a client that sent no data frame for this long; 0 disables.
	idle time.Duration
	// writeTimeout bounds each write to a peer; 0 disables.
	writeTimeout time.Duration
	// closeWait bounds the closing handshake: writing our close frame and waiting
	// for the client's reply.
	closeWait time.Duration
}

// relay joins one client websocket to one browser websocket, after both handshakes.
// It forwards frames byte for byte in both directions, one goroutine per direction;
// run supervises them and closes both connections.
type relay struct {
	cfg     relayConfig
	hooks   hooks
	client  net.Conn
	cr      *bufio.Reader
	cw      *bufio.Writer
	cdw     *deadlineWriter // cw's
	browser net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer

	flushClient, flushBrowser func() error

	start      time.Time
	lastActive atomic.Int64 // time.Since(start) at the client's last data frame

	clientBytes  atomic.Int64 // written to the browser, frame headers included
	browserBytes atomic.Int64 // written to the client, frame headers included

	clientClosed atomic.Bool // the client sent a close frame

	// Owned by the client→browser pump.
	inMessage  bool  // a fragmented message is in progress
	inspecting bool  // … and it is being assembled for hooks.client
	streaming  bool  // … and it is being streamed and scanned
	msgSize    int64 // the size of the client message so far
	scan       scanner
	head       []byte // the start of a streamed message, unmasked
	scratch    []byte // an unmasked copy of a streamed chunk
	msg        []byte // the client message being assembled, unmasked
	msgKey     [4]byte
	hdr        []byte // a copy of a header, or a new one
	out        []byte // a replacement message, masked

	// Owned by the browser→client pump until it exits, then by run.
	midFrame      bool // the pump stopped inside a frame: no close frame can follow
	closeToClient bool // a close frame went to the client
	obs           []byte
	obsOp         opcode
	obsSize       int64
}

// newRelay returns a relay over two upgraded connections and their readers, which
// may hold bytes already read from the connections.
func newRelay(cfg relayConfig, h hooks, client net.Conn, cr *bufio.Reader, browser net.Conn, br *bufio.Reader) *relay {
	cdw := &deadlineWriter{conn: client, timeout: cfg.writeTimeout}
	rl := &relay{
		cfg:     cfg,
		hooks:   h,
		client:  client,
		cr:      cr,
		cw:      bufio.NewWriterSize(cdw, bufSize),
		cdw:     cdw,
		browser: browser,
		br:      br,
		bw:      bufio.NewWriterSize(&deadlineWriter{conn: browser, timeout: cfg.writeTimeout}, bufSize),
		start:   time.Now(),
	}
	rl.flushClient = func() error { return wrapPeer(peerClient, rl.cw.Flush()) }
	rl.flushBrowser = func() error { return wrapPeer(peerBrowser, rl.bw.Flush()) }
	return rl
}

// wrapPeer attributes err to p unless it is attributed already.
func wrapPeer(p peer, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*peerError](err); ok {
		return err
	}
	return &peerError{peer: p, err: err}
}

// copyPayload copies n bytes from r to w through r's buffer, flushing w before r has
// to wait for input. tee, when not nil, sees each chunk before it is written.
func copyPayload(w *bufio.Writer, r *bufio.Reader, n int64, flush func() error, dst peer, tee func([]byte)) error {
	for n > 0 {
		if r.Buffered() == 0 {
			if err := flush(); err != nil {
				return err
			}
			if _, err := r.Peek(1); err != nil {
				return err
			}
		}
		k := r.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		b, _ := r.Peek(k) // k bytes are buffered: Peek cannot fail
		if tee != nil {
			tee(b)
		}
		if _, err := w.Write(b); err != nil {
			return &peerError{peer: dst, err: err}
		}
		r.Discard(k) // k ≤ Buffered: cannot fail
		n -= int64(k)
	}
	return nil
}

// forward writes a frame's raw header and then copies its payload.
func forward(w *bufio.Writer, r *bufio.Reader, h header, raw []byte, flush func() error, dst peer, tee func([]byte)) error {
	if _, err := w.Write(raw); err != nil {
		return &peerError{peer: dst, err: err}
	}
	r.Discard(h.size) // raw was peeked: cannot fail
	return copyPayload(w, r, h.length, flush, dst, tee)
}

// browserToClient forwards the browser's frames to the client until an error, which
// names the side that failed.
func (rl *relay) browserToClient() error {
	return wrapPeer(peerBrowser, rl.pumpBrowser())
}

func (rl *relay) pumpBrowser() error {
	r, w := rl.br, rl.cw
	var tee func([]byte)
	if rl.hooks.browser != nil {
		tee = rl.observe
	}
	for {
		h, raw, err := readHeader(r, 0, rl.flushClient)
		if err != nil {
			return err
		}
		if h.masked {
			return &frameError{closeProtocolError, "masked frame from the browser"}
		}
		t := tee
		if h.op.control() {
			t = nil
		} else if t != nil && h.op != opContinuation {
			rl.obs, rl.obsOp, rl.obsSize = rl.obs[:0], h.op, 0
		}
		rl.midFrame = true
		if err := forward(w, r, h, raw, rl.flushClient, peerClient, t); err != nil {
			return err
		}
		rl.midFrame = false
		rl.browserBytes.Add(int64(h.size) + h.length)
		switch {
		case h.op == opClose:
			rl.closeToClient = true
		case t != nil && h.fin:
			rl.hooks.browser(rl.obsOp, rl.obs, rl.obsSize)
			rl.obs = shrink(rl.obs)
		}
	}
}

// observe collects a browser message for hooks.browser, up to the observe limit.
func (rl *relay) observe(b []byte) {
	rl.obsSize += int64(len(b))
	limit := rl.cfg.observeMax
	if limit <= 0 {
		limit = rl.cfg.maxMessage
	}
	if room := limit - int64(len(rl.obs)); int64(len(b)) > room {
		b = b[:max(room, 0)]
	}
	rl.obs = append(rl.obs, b...)
}

// shrink drops a scratch buffer that grew past 1 MiB, so that one large message does
// not pin its memory for the life of the connection.
func shrink(b []byte) []byte {
	if cap(b) > 1<<20 {
		return nil
	}
	return b[:0]
}

// clientToBrowser forwards the client's frames to the browser until an error, which
// names the side that failed. Complete text messages go through hooks.client.
func (rl *relay) clientToBrowser() error {
	return wrapPeer(peerClient, rl.pumpClient())
}

func (rl *relay) pumpClient() error {
	r, w := rl.cr, rl.bw
	for {
		h, raw, err := readHeader(r, rl.cfg.maxMessage, rl.flushBrowser)
		if err != nil {
			return err
		}
		if !h.masked {
			return &frameError{closeProtocolError, "unmasked frame from the client"}
		}
		if !h.op.control() {
			rl.lastActive.Store(int64(time.Since(rl.start)))
		}
		switch {
		case h.op.control():
			if h.op == opClose {
				rl.clientClosed.Store(true)
			}
			err = forward(w, r, h, raw, rl.flushBrowser, peerBrowser, nil)
			rl.clientBytes.Add(int64(h.size) + h.length)
		case h.op == opContinuation && !rl.inMessage:
			return &frameError{closeProtocolError, "continuation frame outside a message"}
		case h.op != opContinuation && rl.inMessage:
			return &frameError{closeProtocolError, "new message before the last one ended"}
		case h.op == opBinary && rl.hooks.client != nil:
			// Chromium's DevTools websocket takes text only (it drops the connection on a
			// binary frame); an inspected relay never forwards what it did not read.
			return &frameError{closeUnsupported, "binary messages are not relayed: CDP messages are JSON text"}
		case rl.streaming:
			err = rl.streamFrame(h, raw)
		case rl.inspecting || (h.op == opText && rl.hooks.client != nil):
			err = rl.inspectFrame(h, raw)
		default:
			rl.inMessage = !h.fin
			err = forward(w, r, h, raw, rl.flushBrowser, peerBrowser, nil)
			rl.clientBytes.Add(int64(h.size) + h.length)
		}
		if err != nil {
			return err
		}
	}
}

// inspectFrame adds a frame to the text message being assembled; on its last frame it
// gives the message to hooks.client and forwards it, or its replacement, as one frame.
func (rl *relay) inspectFrame(h header, raw []byte) error {
	r, w := rl.cr, rl.bw
	if h.op == opText {
		rl.inspecting, rl.msgKey, rl.msg, rl.msgSize = true, h.key, rl.msg[:0], 0
	}
	rl.msgSize += h.length
	if rl.msgSize > rl.cfg.maxMessage {
		return &frameError{closeTooBig, fmt.Sprintf("message exceeds the limit of %d bytes", rl.cfg.maxMessage)}
	}
	if rl.cfg.inspectMax > 0 && int64(len(rl.msg))+h.length > rl.cfg.inspectMax {
		return rl.startStream(h, raw)
	}
	single := h.op == opText && h.fin
	if single {
		rl.hdr = append(rl.hdr[:0], raw...) // raw is only valid until the next read
	}
	r.Discard(h.size) // raw was peeked: cannot fail
	// Room for the frame, up to 16 MiB ahead of the data: a header may claim up to
	// maxMessage bytes that never come. Beyond, the buffer doubles as data arrives.
	start := len(rl.msg)
	rl.msg = slices.Grow(rl.msg, int(min(h.length, 16<<20)))
	for n := h.length; n > 0; {
		if r.Buffered() == 0 {
			if err := rl.flushBrowser(); err != nil {
				return err
			}
			if _, err := r.Peek(1); err != nil {
				return err
			}
		}
		k := int(min(int64(r.Buffered()), n))
		if cap(rl.msg)-len(rl.msg) < k {
			rl.msg = slices.Grow(rl.msg, max(k, int(min(n, int64(len(rl.msg))))))
		}
		b, _ := r.Peek(k) // k bytes are buffered: Peek cannot fail
		rl.msg = append(rl.msg, b...)
		r.Discard(k) // k ≤ Buffered: cannot fail
		n -= int64(k)
	}
	mask(h.key, 0, rl.msg[start:])
	if !h.fin {
		rl.inMessage = true
		return nil
	}
	rl.inMessage, rl.inspecting = false, false

	rl.scan.reset()
	rl.scan.write(rl.msg)
	cmd, verr := rl.scan.finish()
	if verr != nil {
		return verr
	}
	v := rl.hooks.client(rl.msg, cmd)
	if v.refuse != nil {
		return v.refuse
	}
	out, replace := v.out, v.out != nil
	var payload []byte
	switch {
	case replace:
		rl.out = append(rl.out[:0], out...)
		mask(rl.msgKey, 0, rl.out)
		payload = rl.out
	case single:
		mask(h.key, 0, rl.msg) // back to the very bytes the client sent
		payload = rl.msg
	default: // fragments become one frame, masked with the first fragment's key
		mask(rl.msgKey, 0, rl.msg)
		payload = rl.msg
	}
	if replace || !single {
		rl.hdr = appendHeader(rl.hdr[:0], header{fin: true, op: opText, masked: true, key: rl.msgKey, length: int64(len(payload))})
	}
	if _, err := w.Write(rl.hdr); err != nil {
		return &peerError{peer: peerBrowser, err: err}
	}
	if _, err := w.Write(payload); err != nil {
		return &peerError{peer: peerBrowser, err: err}
	}
	rl.clientBytes.Add(int64(len(rl.hdr) + len(payload)))
	rl.msg, rl.out = shrink(rl.msg), shrink(rl.out)
	return nil
}

// startStream turns the client message being assembled into one that is streamed: the
// part assembled so far is scanned and forwarded as the message's first frame, then
// frame h follows.
func (rl *relay) startStream(h header, raw []byte) error {
	rl.inspecting, rl.streaming = false, true
	rl.scan.reset()
	rl.head = rl.head[:0]
	if h.op == opContinuation { // the message began with frames we kept: send them first
		rl.scan.write(rl.msg)
		rl.keepHead(rl.msg)
		if rl.scan.err != nil {
			return rl.scan.err
		}
		mask(rl.msgKey, 0, rl.msg)
		rl.hdr = appendHeader(rl.hdr[:0], header{op: opText, masked: true, key: rl.msgKey, length: int64(len(rl.msg))})
		if _, err := rl.bw.Write(rl.hdr); err != nil {
			return &peerError{peer: peerBrowser, err: err}
		}
		if _, err := rl.bw.Write(rl.msg); err != nil {
			return &peerError{peer: peerBrowser, err: err}
		}
		rl.clientBytes.Add(int64(len(rl.hdr) + len(rl.msg)))
	}
	rl.msg = shrink(rl.msg)
	return rl.streamPayload(h, raw)
}

// keepHead keeps the start of a streamed message for hooks.clientStreamed.
func (rl *relay) keepHead(b []byte) {
	if room := rl.cfg.headMax - len(rl.head); room > 0 {
		rl.head = append(rl.head, b[:min(room, len(b))]...)
	}
}

// streamFrame forwards a frame of a streamed client message as it comes, scanning its
// payload. The last byte of the message is held back until the scan is complete and
// hooks.clientStreamed has agreed: a refused message never reaches the browser whole.
func (rl *relay) streamFrame(h header, raw []byte) error {
	rl.msgSize += h.length
	if rl.msgSize > rl.cfg.maxMessage {
		return &frameError{closeTooBig, fmt.Sprintf("message exceeds the limit of %d bytes", rl.cfg.maxMessage)}
	}
	return rl.streamPayload(h, raw)
}

// streamPayload forwards frame h of a streamed message (see streamFrame).
func (rl *relay) streamPayload(h header, raw []byte) error {
	r, w := rl.cr, rl.bw
	rl.inMessage = !h.fin
	hold := int64(0)
	if h.fin && h.length > 0 {
		hold = 1
	}
	if !h.fin || h.length > 0 { // an empty last frame waits for the verdict
		if _, err := w.Write(raw); err != nil {
			return &peerError{peer: peerBrowser, err: err}
		}
	} else {
		rl.hdr = append(rl.hdr[:0], raw...)
	}
	r.Discard(h.size) // raw was peeked: cannot fail
	rl.clientBytes.Add(int64(h.size))
	pos := 0
	for n := h.length - hold; n > 0; {
		if r.Buffered() == 0 {
			if err := rl.flushBrowser(); err != nil {
				return err
			}
			if _, err := r.Peek(1); err != nil {
				return err
			}
		}
		k := int(min(int64(r.Buffered()), n))
		b, _ := r.Peek(k) // k bytes are buffered: Peek cannot fail
		pos = rl.scanChunk(h.key, pos, b)
		if rl.scan.err != nil {
			return rl.scan.err
		}
		if _, err := w.Write(b); err != nil {
			return &peerError{peer: peerBrowser, err: err}
		}
		r.Discard(k) // k ≤ Buffered: cannot fail
		rl.clientBytes.Add(int64(k))
		n -= int64(k)
	}
	if !h.fin {
		return nil
	}
	var last []byte
	if hold > 0 {
		if err := rl.flushBrowser(); err != nil {
			return err
		}
		b, err := r.Peek(1)
		if err != nil {
			return err
		}
		last = []byte{b[0]}
		rl.scanChunk(h.key, pos, b)
	}
	rl.streaming, rl.inMessage = false, false
	cmd, verr := rl.scan.finish()
	if verr != nil {
		return verr
	}
	if rl.hooks.clientStreamed != nil {
		if v := rl.hooks.clientStreamed(cmd, rl.head, rl.msgSize); v.refuse != nil {
			return v.refuse
		}
	}
	rl.head, rl.scratch = shrink(rl.head), shrink(rl.scratch)
	if hold == 0 {
		if _, err := w.Write(rl.hdr); err != nil {
			return &peerError{peer: peerBrowser, err: err}
		}
		return nil
	}
	r.Discard(1) // peeked above: cannot fail
	if _, err := w.Write(last); err != nil {
		return &peerError{peer: peerBrowser, err: err}
	}
	rl.clientBytes.Add(1)
	return nil
}

// scanChunk scans a masked chunk that starts at position pos of its frame's payload
// and returns the position after it.
func (rl *relay) scanChunk(key [4]byte, pos int, b []byte) int {
	rl.scratch = append(rl.scratch[:0], b...)
	next := mask(key, pos, rl.scratch)
	rl.scan.write(rl.scratch)
	rl.keepHead(rl.scratch)
	return next
}
