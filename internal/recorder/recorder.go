package recorder

import (
	"bytes"
	"cmp"
	"context"
	_ "embed" // rrweb-record.js
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// script is the rrweb recorder, built by scripts/rrweb/build.sh.
//
//go:embed rrweb-record.js
var script string

const (
	// world is the isolated world the recorder runs in: page scripts cannot see it.
	world = "__browserd_recorder"
	// binding is the function, in that world only, the recorder reports through.
	binding = "browserdRecord"
)

// Config configures a Recorder. Zero values take the defaults in brackets.
type Config struct {
	Logger *slog.Logger
	// FlushInterval is how often collected events are handed on [1s].
	FlushInterval time.Duration
	// FlushBytes hands events on early once this many bytes wait [1 MiB].
	FlushBytes int
	// MaxMessageBytes is the largest CDP message the recorder reads [DefaultMaxMessageBytes].
	// A page's events travel in such messages; a larger one is read through without being
	// kept, and the recording gets a custom event (tag browserd.eventsDropped) in its place.
	// The recorder in the page keeps its own messages well under it (recorderConfig).
	MaxMessageBytes int64
}

// DefaultMaxMessageBytes is Config.MaxMessageBytes when zero.
const DefaultMaxMessageBytes = 8 << 20

// Recorder starts an agent in each session's browser. It implements bb.Agent.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	script string // recorderConfig and the rrweb bundle
}

var _ bb.Agent = (*Recorder)(nil)

// New returns a Recorder.
func New(cfg Config) *Recorder {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = 1 << 20
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	cfg.MaxMessageBytes = max(cfg.MaxMessageBytes, 64<<10) // room for the recorder's own messages
	return &Recorder{cfg: cfg, log: cfg.Logger, script: recorderConfig(cfg.MaxMessageBytes) + script}
}

// recorderConfig is the script that sets the options of the recorder in the page
// (scripts/rrweb/entry.js) for messages of at most maxMessage bytes. A payload is a
// JSON string inside the CDP message, where escaping can double its size, and UTF-8
// takes up to 3 bytes for a character that JavaScript counts as one: so an event is at
// most maxMessage/8 characters (larger ones become a browserd.eventDropped event in the
// page), a batch is sent once it reaches maxMessage/16, and a text node is cut at
// maxMessage/64 characters (rrweb's maskTextFn), so that a page of large texts still
// has a recordable snapshot.
func recorderConfig(maxMessage int64) string {
	b, _ := json.Marshal(map[string]int64{ // a map of numbers always encodes
		"maxEventChars": maxMessage / 8,
		"flushChars":    maxMessage / 16,
		"maxTextChars":  maxMessage / 64,
	})
	return "globalThis.browserdRecorderConfig = " + string(b) + ";\n"
}

// agent is the recorder of one session.
type agent struct {
	r    *Recorder
	opts bb.AgentOptions
	log  *slog.Logger
	c    *cdp.Conn
	ctx  context.Context // cancelled by stop

	// targets maps the agent's flat sessions to their targets, for the logs. Only the
	// read goroutine (onEvent) uses it.
	targets map[string]string
	// own holds, by flat session, the recorder's execution contexts (events.go). Only the
	// read goroutine uses it.
	own  map[string]map[int]bool
	stop context.CancelFunc
	wg   sync.WaitGroup // page setups and the flusher

	mu      sync.Mutex
	pending []bb.RecordingEvent
	size    int
	dropped int           // oversized messages of the recorder, for the log
	kick    chan struct{} // wakes the flusher early
}

// Start connects to the browser, directs its downloads to opts.DownloadDir and, when
// opts.Record, arms the recorder in every page, present and future; when opts.Log is
// set, it enables the events the logs keep in every page (events.go). ctx bounds only the
// setup; the agent runs until stop.
func (r *Recorder) Start(ctx context.Context, browserURL string, opts bb.AgentOptions) (func(), error) {
	actx, cancel := context.WithCancel(context.Background())
	a := &agent{r: r, opts: opts, log: r.log.With("session_id", opts.SessionID), ctx: actx, stop: cancel, kick: make(chan struct{}, 1), targets: map[string]string{}, own: map[string]map[int]bool{}}
	c, err := cdp.Dial(ctx, browserURL, cdp.Options{ReadLimit: r.cfg.MaxMessageBytes, OnEvent: a.onEvent, OnOversize: a.onOversize})
	if err != nil {
		cancel()
		return nil, err
	}
	a.c = c
	if err := a.setup(ctx); err != nil {
		c.CloseNow()
		cancel()
		a.wg.Wait() // pages attached before the failure
		return nil, err
	}
	if opts.Record {
		a.wg.Go(a.flusher)
	}
	var once sync.Once
	return func() { once.Do(a.close) }, nil
}

func (a *agent) setup(ctx context.Context) error {
	if a.opts.DownloadDir != "" {
		// eventsEnabled: Chromium tells every connection that asked for them of every
		// download, whoever set the behaviour, so the agent learns the suggested name of
		// files a client's "allowAndName" saves under their guid.
		if err := a.c.Call(ctx, "", "Browser.setDownloadBehavior", map[string]any{
			"behavior": "allow", "downloadPath": a.opts.DownloadDir, "eventsEnabled": a.opts.Download != nil || a.opts.Log != nil,
		}, nil); err != nil {
			return fmt.Errorf("set download dir: %w", err)
		}
	}
	if !a.opts.Record && a.opts.Log == nil {
		return nil
	}
	// Pages only: every page that exists and every new one attaches to this connection
	// paused (waitForDebuggerOnStart), so the recorder and the events are in place
	// before its first document; armPage resumes it.
	return a.c.Call(ctx, "", "Target.setAutoAttach", map[string]any{
		"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true,
		"filter": []map[string]any{{"type": "page"}},
	}, nil)
}

// eventParams are the params of the events the agent reads: Target.attachedToTarget and
// detachedFromTarget, Runtime.bindingCalled, Browser.downloadWillBegin and
// downloadProgress.
type eventParams struct {
	GUID              string `json:"guid"`
	SuggestedFilename string `json:"suggestedFilename"`
	State             string `json:"state"`

	SessionID  string `json:"sessionId"`
	TargetID   string `json:"targetId"`
	TargetInfo struct {
		TargetID string `json:"targetId"`
		Type     string `json:"type"`
	} `json:"targetInfo"`
	WaitingForDebugger bool   `json:"waitingForDebugger"`
	Name               string `json:"name"`
	Payload            string `json:"payload"`
}

// onEvent runs on the read loop: it must not call the browser.
func (a *agent) onEvent(m cdp.Event) {
	switch m.Method {
	case "Target.attachedToTarget", "Target.detachedFromTarget", "Runtime.bindingCalled",
		"Browser.downloadWillBegin", "Browser.downloadProgress":
	case "Runtime.executionContextCreated", "Runtime.executionContextDestroyed", "Runtime.executionContextsCleared":
		if a.opts.Log != nil && a.opts.Record {
			a.noteContext(m)
		}
		return
	default:
		if a.opts.Log != nil && loggedEvent(m.Method) {
			a.logEvent(m, a.targets[m.SessionID])
		}
		return
	}
	var p eventParams
	if json.Unmarshal(m.Params, &p) != nil {
		return
	}
	switch m.Method {
	case "Browser.downloadWillBegin":
		if a.opts.Download != nil && p.GUID != "" {
			a.opts.Download(p.GUID, p.SuggestedFilename)
		}
		a.logEvent(m, "")
	case "Browser.downloadProgress":
		if p.State == "completed" || p.State == "canceled" { // not every inProgress step
			a.logEvent(m, "")
		}
	case "Target.attachedToTarget":
		a.targets[p.SessionID] = p.TargetInfo.TargetID
		a.logEvent(m, p.TargetInfo.TargetID)
		if a.ctx.Err() != nil {
			return
		}
		a.wg.Go(func() { a.armPage(p.SessionID, p.TargetInfo.Type, p.WaitingForDebugger) })
	case "Target.detachedFromTarget":
		a.logEvent(m, cmp.Or(p.TargetID, a.targets[p.SessionID]))
		delete(a.targets, p.SessionID)
		delete(a.own, p.SessionID)
	case "Runtime.bindingCalled":
		if p.Name != binding {
			return
		}
		var events []bb.RecordingEvent
		if json.Unmarshal([]byte(p.Payload), &events) != nil {
			return
		}
		a.add(events, len(p.Payload))
	}
}

// bindingCalled starts the CDP message of a binding call (Chromium writes the method
// first).
var bindingCalled = []byte(`{"method":"Runtime.bindingCalled"`)

// onOversize runs on the read loop for a message over MaxMessageBytes, which was not
// kept. When it was the page's recorder reporting, a custom event takes its place, so
// that a replay shows the gap; other messages (a page's huge console message reaches
// this connection too, as Runtime is enabled) are only counted.
func (a *agent) onOversize(size int64, head []byte) {
	a.mu.Lock()
	a.dropped++
	n := a.dropped
	a.mu.Unlock()
	record := bytes.HasPrefix(head, bindingCalled)
	a.log.Info("recorder message dropped", "bytes", size, "limit_bytes", a.r.cfg.MaxMessageBytes, "dropped", n, "recording", record)
	if !record || !a.opts.Record {
		return
	}
	data, _ := json.Marshal(map[string]any{ // a literal map of plain values encodes
		"tag":     "browserd.eventsDropped",
		"payload": map[string]any{"bytes": size, "limitBytes": a.r.cfg.MaxMessageBytes},
	})
	a.add([]bb.RecordingEvent{{Type: bb.RRWebCustom, Timestamp: time.Now().UnixMilli(), Data: data}}, len(data))
}

// step is a command armPage sends.
type step struct {
	method string
	params any
}

// pageSteps are the commands that arm a page: the recorder, the events of the logs.
func (a *agent) pageSteps() []step {
	// Chromium reports binding calls only to a session with Runtime enabled, and runs
	// new-document scripts on navigations only with Page enabled; both come first, as
	// runImmediately may report at once. Runtime and Page also give the logs their
	// console, exception and navigation events.
	steps := []step{{"Runtime.enable", nil}, {"Page.enable", nil}}
	if a.opts.Log != nil {
		steps = append(steps, step{"Network.enable", networkEnable})
	}
	if a.opts.Record {
		steps = append(steps,
			step{"Runtime.addBinding", map[string]any{"name": binding, "executionContextName": world}},
			step{"Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": a.r.script, "worldName": world, "runImmediately": true}})
	}
	return steps
}

// armPage installs the recorder and the events of the logs in a page session and
// resumes the page.
func (a *agent) armPage(sessionID, typ string, waiting bool) {
	// Generous: on a loaded machine Chromium takes seconds to answer, and a page that
	// is not armed is not recorded. A paused page is resumed when this ends either way.
	ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
	defer cancel()
	// Every command is sent before any answer is awaited, the resume last (as
	// Playwright arms its pages): Chromium runs one session's commands in order, so the
	// recorder is in place before the page runs, and the page waits for one round of
	// writes rather than four round trips before it is resumed.
	var steps []step
	if typ == "page" {
		steps = append(steps, a.pageSteps()...)
	}
	if waiting {
		// Resume even when arming failed: a page must never stay paused because of us.
		steps = append(steps, step{"Runtime.runIfWaitingForDebugger", nil})
	}
	var err error
	var waits []chan error
	for _, s := range steps {
		ch := make(chan error, 1)
		serr := a.c.Send(ctx, sessionID, s.method, s.params, func(_ json.RawMessage, err error) {
			if err != nil {
				err = fmt.Errorf("%s: %w", s.method, err)
			}
			ch <- err
		})
		if serr != nil {
			err = serr
			break
		}
		waits = append(waits, ch)
	}
	for _, ch := range waits {
		var werr error
		select {
		case werr = <-ch:
		case <-ctx.Done():
			werr = ctx.Err()
		}
		if err == nil {
			err = werr
		}
	}
	if err != nil && a.ctx.Err() == nil && !errors.Is(err, cdp.ErrClosed) {
		a.log.Info("page not armed", "cdp_session", sessionID, "err", err) // also when a tab closes at once
	}
}

func (a *agent) add(events []bb.RecordingEvent, size int) {
	a.mu.Lock()
	a.pending = append(a.pending, events...)
	a.size += size
	full := a.size >= a.r.cfg.FlushBytes
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// flusher hands collected events on every FlushInterval, or sooner when many wait,
// until the agent stops; then it hands on what is left.
func (a *agent) flusher() {
	t := time.NewTicker(a.r.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-a.kick:
		case <-a.ctx.Done():
			a.flush()
			return
		}
		a.flush()
	}
}

func (a *agent) flush() {
	a.mu.Lock()
	events := a.pending
	a.pending, a.size = nil, 0
	a.mu.Unlock()
	if len(events) > 0 && a.opts.Events != nil {
		a.opts.Events(events)
	}
}

// close ends the connection, waits for the page setups, and flushes the last events.
func (a *agent) close() {
	a.c.CloseNow() // pending calls fail at once
	a.stop()
	a.wg.Wait()
	a.flush() // events that arrived after the flusher's last turn
}
