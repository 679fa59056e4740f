package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// benchCDP is the bench's CDP client: one command at a time on one websocket. It parses
// only what it must (the id of an answer), so that its own CPU cost stays small and
// equal on every path; events read while waiting for an answer are kept for waitEvent.
type benchCDP struct {
	c      *websocket.Conn
	id     int64
	buf    []byte
	events []benchEvent
}

type benchEvent struct {
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Params    json.RawMessage `json:"params"`
}

// maxBenchEvents bounds the kept events; the bench waits only for recent ones.
const maxBenchEvents = 1024

func benchDial(ctx context.Context, url string) (*benchCDP, error) {
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial cdp: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial cdp: %w", err)
	}
	c.SetReadLimit(512 << 20) // full-page screenshots are tens of MB
	return &benchCDP{c: c}, nil
}

func (c *benchCDP) close() { c.c.CloseNow() } // the bench needs no close handshake

// benchMessageID returns the id of a CDP answer, which Chromium writes first:
// {"id":12,"result":…} or {"id":12,"error":…}; isErr tells which. ok is false for
// events and for anything else.
func benchMessageID(msg []byte) (id int64, isErr, ok bool) {
	rest, found := bytes.CutPrefix(msg, []byte(`{"id":`))
	if !found {
		return 0, false, false
	}
	n := 0
	for n < len(rest) && n < 18 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || (n < len(rest) && rest[n] >= '0' && rest[n] <= '9') {
		return 0, false, false
	}
	id, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return id, bytes.HasPrefix(rest[n:], []byte(`,"error"`)), true
}

// callRaw sends a command with params already encoded (nil for none) and returns the
// whole answer message, which stays valid until the next call.
func (c *benchCDP) callRaw(ctx context.Context, sessionID, method string, params []byte) ([]byte, error) {
	c.id++
	b := append(c.buf[:0], `{"id":`...)
	b = strconv.AppendInt(b, c.id, 10)
	b = append(b, `,"method":"`...)
	b = append(b, method...)
	b = append(b, '"')
	if sessionID != "" {
		b = append(b, `,"sessionId":"`...)
		b = append(b, sessionID...)
		b = append(b, '"')
	}
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	b = append(b, '}')
	c.buf = b
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		_, msg, err := c.c.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		id, isErr, ok := benchMessageID(msg)
		if !ok {
			c.keepEvent(msg)
			continue
		}
		if id != c.id {
			continue // an answer to a command given up on earlier
		}
		if isErr {
			return nil, fmt.Errorf("%s: %.300s", method, msg)
		}
		return msg, nil
	}
}

// call sends a command and decodes the answer's result into out (nil: ignore it).
func (c *benchCDP) call(ctx context.Context, sessionID, method string, params, out any) error {
	var p []byte
	if params != nil {
		var err error
		if p, err = json.Marshal(params); err != nil {
			return err
		}
	}
	msg, err := c.callRaw(ctx, sessionID, method, p)
	if err != nil || out == nil {
		return err
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(msg, &answer); err != nil {
		return fmt.Errorf("%s: decode answer: %w", method, err)
	}
	return json.Unmarshal(answer.Result, out)
}

func (c *benchCDP) keepEvent(msg []byte) {
	var e benchEvent
	if json.Unmarshal(msg, &e) != nil || e.Method == "" {
		return // not an event: nothing to keep
	}
	if len(c.events) == maxBenchEvents {
		c.events = append(c.events[:0], c.events[1:]...)
	}
	c.events = append(c.events, e)
}

// waitEvent returns the params of the first event method of sessionID, kept or new.
func (c *benchCDP) waitEvent(ctx context.Context, sessionID, method string, match func(json.RawMessage) bool) (json.RawMessage, error) {
	for {
		for i, e := range c.events {
			if e.Method == method && e.SessionID == sessionID && (match == nil || match(e.Params)) {
				c.events = append(c.events[:i], c.events[i+1:]...)
				return e.Params, nil
			}
		}
		_, msg, err := c.c.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("wait for %s: %w", method, err)
		}
		if _, _, ok := benchMessageID(msg); !ok {
			c.keepEvent(msg)
		}
	}
}

// attachPage finds the browser's page, attaches to it (flat session) and enables the
// Page domain; it returns the CDP session id.
func (c *benchCDP) attachPage(ctx context.Context) (string, error) {
	if err := c.call(ctx, "", "Target.setDiscoverTargets", map[string]any{"discover": true}, nil); err != nil {
		return "", err
	}
	var target struct {
		TargetInfo struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfo"`
	}
	if _, err := c.waitEvent(ctx, "", "Target.targetCreated", func(p json.RawMessage) bool {
		return json.Unmarshal(p, &target) == nil && target.TargetInfo.Type == "page"
	}); err != nil {
		return "", err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget",
		map[string]any{"targetId": target.TargetInfo.TargetID, "flatten": true}, &attached); err != nil {
		return "", err
	}
	if err := c.call(ctx, attached.SessionID, "Page.enable", nil, nil); err != nil {
		return "", err
	}
	return attached.SessionID, nil
}

// navigate loads url in the page of sessionID and waits for its load event.
func (c *benchCDP) navigate(ctx context.Context, sessionID, url string) error {
	kept := c.events[:0]
	for _, e := range c.events {
		if e.Method != "Page.loadEventFired" {
			kept = append(kept, e)
		}
	}
	c.events = kept
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.call(ctx, sessionID, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, res.ErrorText)
	}
	_, err := c.waitEvent(ctx, sessionID, "Page.loadEventFired", nil)
	return err
}

// benchPages serves the pages the browsers load: a small page and a tall one for
// full-page screenshots, from 127.0.0.1.
type benchPages struct {
	srv  *http.Server
	done chan error
	base string
}

const benchSmallPage = `<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head>
<body><h1>browserd bench</h1><p>A small local page.</p></body></html>`

// benchTallPage is 1280 px wide: 1 000 px of text, then a canvas of seeded noise that
// PNG cannot compress (the worst case for message size), as tall as the format's %d.
const benchTallPage = `<!doctype html><html><head><meta charset="utf-8"><title>tall</title>
<style>body{margin:0;font:16px sans-serif}p{margin:0;height:20px}canvas{display:block}</style></head>
<body><div id="t"></div><canvas id="c" width="1280" height="%d"></canvas><script>
const t = document.getElementById('t');
for (let i = 0; i < 50; i++) { const p = document.createElement('p'); p.textContent = 'row ' + i + ' of the tall page'; t.appendChild(p); }
const c = document.getElementById('c'), x = c.getContext('2d'), d = x.createImageData(c.width, c.height);
let s = 2463534242;
for (let i = 0; i < d.data.length; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; d.data[i] = (i & 3) == 3 ? 255 : s & 255; }
x.putImageData(d, 0, 0);
</script></body></html>`

func startBenchPages(tallHeight int) (*benchPages, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte(body)) // a browser that went away needs no page
		}
	}
	mux.HandleFunc("GET /{$}", page(benchSmallPage))
	mux.HandleFunc("GET /tall", page(fmt.Sprintf(benchTallPage, tallHeight)))
	p := &benchPages{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1), base: "http://" + ln.Addr().String()}
	go func() { p.done <- p.srv.Serve(ln) }() // ends in close, which reads done
	return p, nil
}

func (p *benchPages) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx) // the measurements are over; a slow client changes nothing
	<-p.done                // ErrServerClosed, or an accept error that no longer matters
}

func (p *benchPages) small() string { return p.base + "/" }
func (p *benchPages) tall() string  { return p.base + "/tall" }
