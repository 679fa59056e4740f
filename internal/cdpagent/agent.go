package cdpagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// Emulator starts agents. It implements bb.Emulator.
type Emulator struct {
	Logger *slog.Logger
}

var _ bb.Emulator = (*Emulator)(nil)

// Emulate starts an agent on b's browser-level DevTools socket.
func (em *Emulator) Emulate(ctx context.Context, b bb.Browser, e bb.Emulation) (io.Closer, error) {
	return Start(ctx, b.DevToolsURL(), e, em.Logger)
}

// commandTimeout bounds the commands that configure one target.
const commandTimeout = 10 * time.Second

// Agent is a browserd-side CDP connection to one browser that applies an Emulation to
// every page, frame and worker as it appears (before it runs: auto-attach with
// waitForDebuggerOnStart) and enforces allowedDomains on main-frame navigations.
type Agent struct {
	c   *cdp.Conn
	e   bb.Emulation
	log *slog.Logger

	version string // Chromium's full version
	ua      string
	meta    *bb.UserAgentMetadata

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // configure goroutines

	mu         sync.Mutex
	pages      map[string]string // CDP session id → target id, for page targets
	collecting bool              // Start is collecting the existing targets in initial
	initial    []chan struct{}   // closed when each existing target is configured
}

// attachParams are the parameters of Target.setAutoAttach.
var attachParams = map[string]any{"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}

// Start connects to a browser-level DevTools websocket and applies e to every target,
// existing and new, until Close. It returns once the existing targets are configured.
func Start(ctx context.Context, browserURL string, e bb.Emulation, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	actx, cancel := context.WithCancel(context.Background())
	a := &Agent{e: e, log: log, ctx: actx, cancel: cancel, pages: make(map[string]string)}
	c, err := cdp.Dial(ctx, browserURL, cdp.Options{OnEvent: a.onEvent})
	if err != nil {
		cancel()
		return nil, err
	}
	a.c = c
	var v struct {
		Product string `json:"product"`
	}
	if err := c.Call(ctx, "", "Browser.getVersion", nil, &v); err != nil {
		a.Close()
		return nil, err
	}
	_, a.version, _ = strings.Cut(v.Product, "/") // "HeadlessChrome/156.0.8078.108"
	if p := e.Profile; p != nil {
		a.ua = p.UserAgent(a.version)
		m := p.Metadata(a.version)
		a.meta = &m
	}
	// The events for the existing targets come before this command's result.
	a.mu.Lock()
	a.collecting = true
	a.mu.Unlock()
	err = c.Call(ctx, "", "Target.setAutoAttach", attachParams, nil)
	a.mu.Lock()
	a.collecting = false
	initial := a.initial
	a.mu.Unlock()
	if err != nil {
		a.Close()
		return nil, err
	}
	for _, ch := range initial {
		select {
		case <-ch:
		case <-ctx.Done():
			a.Close()
			return nil, fmt.Errorf("configure existing targets: %w", ctx.Err())
		}
	}
	return a, nil
}

// Close disconnects from the browser (its overrides end with the connection) and waits
// for the agent's goroutines.
func (a *Agent) Close() error {
	a.cancel()
	a.c.Close()
	a.wg.Wait()
	return nil
}

type targetInfo struct {
	TargetID string `json:"targetId"`
	Type     string `json:"type"`
}

func (a *Agent) onEvent(m cdp.Event) {
	switch m.Method {
	case "Target.attachedToTarget":
		var p struct {
			SessionID          string     `json:"sessionId"`
			TargetInfo         targetInfo `json:"targetInfo"`
			WaitingForDebugger bool       `json:"waitingForDebugger"`
		}
		if json.Unmarshal(m.Params, &p) != nil {
			return
		}
		configured := make(chan struct{})
		a.mu.Lock()
		if p.TargetInfo.Type == "page" {
			a.pages[p.SessionID] = p.TargetInfo.TargetID
		}
		if a.collecting {
			a.initial = append(a.initial, configured)
		}
		a.mu.Unlock()
		a.wg.Go(func() { // ends when its commands are answered or time out
			defer close(configured)
			a.configure(p.SessionID, p.TargetInfo, p.WaitingForDebugger)
		})
	case "Target.detachedFromTarget":
		var p struct {
			SessionID string `json:"sessionId"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			a.mu.Lock()
			delete(a.pages, p.SessionID)
			a.mu.Unlock()
		}
	case "Fetch.requestPaused":
		a.requestPaused(m.SessionID, m.Params)
	}
}

// configure applies the emulation to a newly attached target, then lets it run.
func (a *Agent) configure(sid string, t targetInfo, waiting bool) {
	ctx, cancel := context.WithTimeout(a.ctx, commandTimeout)
	defer cancel()
	var calls []chan error
	var names []string
	send := func(method string, params any) {
		ch := make(chan error, 1)
		if err := a.c.Send(ctx, sid, method, params, func(_ json.RawMessage, err error) { ch <- err }); err != nil {
			ch <- err
		}
		calls = append(calls, ch)
		names = append(names, method)
	}
	p := a.e.Profile
	switch t.Type {
	case "page", "iframe":
		if p != nil {
			send("Emulation.setUserAgentOverride", a.uaParams())
			// A client's own setUserAgentOverride (Playwright sends one for every page,
			// with an empty user agent) resets navigator.platform, which is kept per page
			// rather than per CDP session; a getter defined before the page's scripts
			// holds whatever other clients send.
			if t.Type == "page" {
				send("Page.enable", nil)
			}
			send("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": platformScript(p.Platform())})
			send("Emulation.setLocaleOverride", map[string]any{"locale": p.Locale()})
			if p.Touch() {
				send("Emulation.setTouchEmulationEnabled", map[string]any{"enabled": true, "maxTouchPoints": 5})
			}
			if p.Form != bb.FormDesktop && t.Type == "page" {
				send("Emulation.setDeviceMetricsOverride", map[string]any{
					"width": p.Viewport.Width, "height": p.Viewport.Height, "deviceScaleFactor": 2.625,
					"mobile": p.Mobile(), "screenWidth": p.Screen.Width, "screenHeight": p.Screen.Height,
				})
			}
		}
		if t.Type == "page" && len(a.e.AllowedDomains) > 0 {
			send("Fetch.enable", map[string]any{"patterns": []map[string]any{{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}}})
		}
		send("Target.setAutoAttach", attachParams) // out-of-process frames and workers
	case "worker", "shared_worker", "service_worker":
		if p != nil {
			send("Network.setUserAgentOverride", a.uaParams())
		}
	}
	if waiting {
		send("Runtime.runIfWaitingForDebugger", nil)
	}
	for i, ch := range calls {
		select {
		case err := <-ch:
			if err != nil && !errors.Is(err, cdp.ErrClosed) {
				a.log.Debug("configure target", "target_type", t.Type, "method", names[i], "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

func (a *Agent) uaParams() map[string]any {
	p := a.e.Profile
	return map[string]any{
		"userAgent": a.ua, "acceptLanguage": p.AcceptLanguage(), "platform": p.Platform(), "userAgentMetadata": a.meta,
	}
}

// requestPaused lets a paused document request go on, or fails it when it is a
// main-frame navigation to a domain that allowedDomains excludes. Only http(s) URLs are
// checked (docs/COMPATIBILITY.md, "allowedDomains").
//
// A blocked navigation fails as aborted (net::ERR_ABORTED): the tab stays on its document.
// Any other error reason (BlockedByClient was the first choice) makes Chromium commit its
// error page, chrome-error://chromewebdata/, after Page.navigate has already answered with
// the error; a client that navigates again at once sees that late commit as its next
// navigation being interrupted (Playwright's page.goto: "interrupted by another navigation
// to chrome-error://chromewebdata/"), and the tab looks unusable.
func (a *Agent) requestPaused(sid string, raw json.RawMessage) {
	var p struct {
		RequestID string `json:"requestId"`
		FrameID   string `json:"frameId"`
		Request   struct {
			URL string `json:"url"`
		} `json:"request"`
	}
	if json.Unmarshal(raw, &p) != nil || p.RequestID == "" {
		return
	}
	a.mu.Lock()
	mainFrame := a.pages[sid] // a page's main frame has the page's target id
	a.mu.Unlock()
	method, params := "Fetch.continueRequest", map[string]any{"requestId": p.RequestID}
	if p.FrameID == mainFrame && mainFrame != "" {
		if u, err := url.Parse(p.Request.URL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && !a.e.DomainAllowed(u.Hostname()) {
			method, params["errorReason"] = "Fetch.failRequest", "Aborted" // no error page: see above
			a.log.Info("navigation blocked by allowedDomains", "host", u.Hostname())
			if a.e.Blocked != nil {
				a.e.Blocked(p.Request.URL)
			}
		}
	}
	// Not waited for: this runs in the read goroutine. A failure means the target is gone.
	_ = a.c.Send(a.ctx, sid, method, params, nil)
}

// platformScript defines navigator.platform as p for a document.
func platformScript(p string) string {
	b, _ := json.Marshal(p) // a string always marshals
	return `Object.defineProperty(Navigator.prototype, "platform", {get: () => ` + string(b) + `, configurable: true, enumerable: true});`
}
