package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/browserd/browserd/internal/cdp"
)

// benchCDP is the bench's CDP client: one command at a time on one cdp.Conn, whose
// decoder leaves results unparsed (a screenshot is not scanned twice), so that the
// client's own CPU cost stays small and equal on every path. Events are kept for
// waitEvent.
type benchCDP struct {
	c      *cdp.Conn
	notify chan struct{} // 1-buffered: an event was kept

	mu     sync.Mutex
	events []cdp.Event
}

// maxBenchEvents bounds the kept events; the bench waits only for recent ones.
const maxBenchEvents = 1024

// benchReadLimit is the bench's read limit, above cdp.DefaultReadLimit: a tall
// --shot-height canvas makes a screenshot of hundreds of MB.
const benchReadLimit = 512 << 20

func benchDial(ctx context.Context, url string) (*benchCDP, error) {
	b := &benchCDP{notify: make(chan struct{}, 1)}
	c, err := cdp.Dial(ctx, url, cdp.Options{ReadLimit: benchReadLimit, OnEvent: b.keepEvent})
	if err != nil {
		return nil, err
	}
	b.c = c
	return b, nil
}

func (c *benchCDP) close() { c.c.CloseNow() } // the bench needs no close handshake

// callRaw sends a command with params already encoded (nil for none) and returns the
// answer's raw result.
func (c *benchCDP) callRaw(ctx context.Context, sessionID, method string, params []byte) ([]byte, error) {
	var p any
	if params != nil {
		p = json.RawMessage(params)
	}
	var res json.RawMessage
	if err := c.c.Call(ctx, sessionID, method, p, &res); err != nil {
		return nil, err
	}
	return res, nil
}

// call sends a command and decodes the answer's result into out (nil: ignore it).
func (c *benchCDP) call(ctx context.Context, sessionID, method string, params, out any) error {
	return c.c.Call(ctx, sessionID, method, params, out)
}

// keepEvent runs on the connection's read goroutine.
func (c *benchCDP) keepEvent(e cdp.Event) {
	c.mu.Lock()
	if len(c.events) == maxBenchEvents {
		c.events = append(c.events[:0], c.events[1:]...)
	}
	c.events = append(c.events, e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// takeEvent removes and returns the params of the first kept event method of
// sessionID that match accepts (nil: any).
func (c *benchCDP) takeEvent(sessionID, method string, match func(json.RawMessage) bool) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.events {
		if e.Method == method && e.SessionID == sessionID && (match == nil || match(e.Params)) {
			c.events = append(c.events[:i], c.events[i+1:]...)
			return e.Params, true
		}
	}
	return nil, false
}

// waitEvent returns the params of the first event method of sessionID, kept or new.
func (c *benchCDP) waitEvent(ctx context.Context, sessionID, method string, match func(json.RawMessage) bool) (json.RawMessage, error) {
	for {
		if p, ok := c.takeEvent(sessionID, method, match); ok {
			return p, nil
		}
		select {
		case <-c.notify:
		case <-c.c.Done():
			return nil, fmt.Errorf("wait for %s: %w", method, c.c.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", method, ctx.Err())
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
	c.mu.Lock()
	kept := c.events[:0]
	for _, e := range c.events {
		if e.Method != "Page.loadEventFired" {
			kept = append(kept, e)
		}
	}
	c.events = kept
	c.mu.Unlock()
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
	site benchSite // the clients phase's pages (bench_clients_site.go)
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
	p.site.register(mux)
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
