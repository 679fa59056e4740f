package cdpproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// websocketGUID is the RFC 6455 §1.3 constant hashed into Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// bufSize is the size of each of a relay's four buffers.
const bufSize = 64 << 10

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerHasToken reports whether a comma-separated header (any of its values)
// contains token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// upgradeError is a refused upgrade request: the status and a client-safe message.
type upgradeError struct {
	status int
	msg    string
}

func (e *upgradeError) Error() string { return e.msg }

// checkUpgrade validates a client's websocket upgrade request (RFC 6455 §4.2.1) and
// returns its Sec-WebSocket-Key.
func checkUpgrade(r *http.Request) (string, error) {
	if r.ProtoMajor != 1 {
		return "", &upgradeError{http.StatusBadRequest, "websocket upgrades need HTTP/1.1"}
	}
	if r.Method != http.MethodGet {
		return "", &upgradeError{http.StatusBadRequest, "the CDP endpoint accepts only GET websocket upgrades"}
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return "", &upgradeError{http.StatusUpgradeRequired, "the CDP endpoint needs a websocket upgrade (Connection: Upgrade, Upgrade: websocket)"}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return "", &upgradeError{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version; want 13"}
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", &upgradeError{http.StatusBadRequest, "invalid Sec-WebSocket-Key"}
	}
	return key, nil
}

// prefixReader reads the bytes a hijacked bufio.Reader already held, then the conn.
type prefixReader struct {
	prefix []byte
	r      io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// hijack takes over the client's connection and completes its upgrade with a 101 that
// negotiates no extension and no subprotocol. It returns the connection and a reader
// that starts with any bytes the HTTP server had already buffered.
func hijack(w http.ResponseWriter, key string, timeout time.Duration) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack client connection: %w", err)
	}
	var src io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n) // n bytes are buffered: Peek cannot fail
		src = &prefixReader{prefix: append([]byte(nil), b...), r: conn}
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	// The server may have set deadlines on the connection; the relay sets its own. A
	// failure to set one means the connection is gone, which the write reports.
	_ = conn.SetDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, resp); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("write 101 response: %w", err)
	}
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("clear write deadline: %w", err)
	}
	return conn, bufio.NewReaderSize(src, bufSize), nil
}

// errBadHandshake is the cause of a browser refusing or botching the upgrade.
var errBadHandshake = errors.New("cdpproxy: bad websocket handshake from the browser")

// dialBrowser connects to a browser's DevTools websocket (ws://host:port/path) with a
// plain TCP connection and an HTTP/1.1 upgrade that offers no extension. ctx bounds the
// whole handshake. It returns the connection and a reader holding anything the browser
// sent after its 101.
func dialBrowser(ctx context.Context, rawURL string) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parse browser url: %w", err)
	}
	if u.Scheme != "ws" {
		return nil, nil, fmt.Errorf("browser url scheme %q: want ws", u.Scheme)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("dial browser: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("set handshake deadline: %w", err)
		}
	}
	// Cancelling ctx unblocks the handshake; an error here means conn is already closed.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var nonce [16]byte
	rand.Read(nonce[:]) // never returns an error (crypto/rand docs)
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("browser handshake: %w", ctx.Err())
		}
		return nil, nil, err
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return fail(fmt.Errorf("write upgrade request: %w", err))
	}
	br := bufio.NewReaderSize(conn, bufSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("read upgrade response: %w", err))
	}
	resp.Body.Close() // a 101 has no body; for others we only need the status
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fail(fmt.Errorf("%w: status %s", errBadHandshake, resp.Status))
	case !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade"):
		return fail(fmt.Errorf("%w: missing Upgrade or Connection header", errBadHandshake))
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return fail(fmt.Errorf("%w: wrong Sec-WebSocket-Accept", errBadHandshake))
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return fail(fmt.Errorf("%w: unrequested extension", errBadHandshake))
	}
	if !stop() {
		return fail(fmt.Errorf("browser handshake: %w", ctx.Err()))
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(fmt.Errorf("clear handshake deadline: %w", err))
	}
	return conn, br, nil
}
