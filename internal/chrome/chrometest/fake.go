package chrometest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome"
)

// Launcher is a fake bb.Launcher. It starts no process, opens no socket, creates no file
// and starts no goroutine of its own, so it works inside a testing/synctest bubble. Set
// its fields before the first Launch; they are read without locking.
type Launcher struct {
	// LaunchErr, when set, is returned by every Launch.
	LaunchErr error
	// OnLaunch, when set, is called by Launch after LaunchErr; an error it returns is
	// returned by Launch. Use it to fail or block particular launches.
	OnLaunch func(ctx context.Context, opts bb.LaunchOptions) error
	// ReadyDelay is how long WaitReady takes (on the fake clock inside a bubble).
	ReadyDelay time.Duration
	// ReadyErr, when set, is returned by WaitReady after ReadyDelay.
	ReadyErr error
	// DevToolsURL is every browser's DevToolsURL, e.g. a test websocket server's URL.
	DevToolsURL string
	// RunDir, when set, is the parent of every browser's Dir, made with downloads/ and
	// uploads/ as a real browser's is and removed by Close; "" gives made-up dirs that
	// do not exist.
	RunDir string
	// ReapKilled and ReapErr are what Reap returns.
	ReapKilled int
	ReapErr    error
	// ForegroundErr is what Foreground returns for a browser launched with Background.
	ForegroundErr error

	mu       sync.Mutex
	browsers []*Browser
	closed   int
	reaped   int
}

var _ bb.Launcher = (*Launcher)(nil)

// Launch returns a fake Browser. The browser belongs to ctx like a real one: it is
// closed when ctx is cancelled.
func (l *Launcher) Launch(ctx context.Context, opts bb.LaunchOptions) (bb.Browser, error) {
	if l.LaunchErr != nil {
		return nil, l.LaunchErr
	}
	if l.OnLaunch != nil {
		if err := l.OnLaunch(ctx, opts); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch fake chrome: %w", err)
	}
	runDir := l.RunDir
	if runDir == "" {
		runDir = "/nonexistent/browserd-fake-run"
	}
	if l.RunDir != "" {
		for _, d := range []string{"downloads", "uploads"} {
			if err := os.MkdirAll(path.Join(runDir, opts.SessionID, d), 0o700); err != nil {
				return nil, fmt.Errorf("launch fake chrome: %w", err)
			}
		}
	}
	l.mu.Lock()
	b := &Browser{
		l:      l,
		opts:   opts,
		pid:    100000 + len(l.browsers),
		dir:    path.Join(runDir, opts.SessionID),
		url:    l.DevToolsURL,
		delay:  l.ReadyDelay,
		ready:  l.ReadyErr,
		exited: make(chan struct{}),
	}
	l.browsers = append(l.browsers, b)
	l.mu.Unlock()
	b.mu.Lock()                                                               // the callback's Close takes b.mu: it sees stop set
	b.stop = context.AfterFunc(ctx, func() { b.Close(context.Background()) }) // never fails
	b.mu.Unlock()
	return b, nil
}

// Reap counts the call and returns ReapKilled and ReapErr.
func (l *Launcher) Reap(ctx context.Context) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reaped++
	return l.ReapKilled, l.ReapErr
}

// Launched returns how many browsers Launch returned.
func (l *Launcher) Launched() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.browsers)
}

// Closed returns how many browsers were closed (each counts once).
func (l *Launcher) Closed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Reaped returns how many times Reap was called.
func (l *Launcher) Reaped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reaped
}

// Browsers returns the browsers launched so far, oldest first.
func (l *Launcher) Browsers() []*Browser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Browser(nil), l.browsers...)
}

// Live returns how many launched browsers have not exited.
func (l *Launcher) Live() int {
	n := 0
	for _, b := range l.Browsers() {
		select {
		case <-b.exited:
		default:
			n++
		}
	}
	return n
}

// Browser is a fake bb.Browser returned by Launcher.
type Browser struct {
	l     *Launcher
	opts  bb.LaunchOptions
	pid   int
	dir   string
	url   string
	delay time.Duration
	ready error

	exited     chan struct{}
	exitOnce   sync.Once
	mu         sync.Mutex
	stop       func() bool // unregisters the ctx-triggered Close
	closeCalls int
	egress     func(net.Conn)
	foreground bool
	killed     bool
}

var (
	_ bb.Browser      = (*Browser)(nil)
	_ bb.Foregrounder = (*Browser)(nil)
	_ bb.Killer       = (*Browser)(nil)
)

// Foreground records the call and returns the launcher's ForegroundErr; it fails for a
// browser launched without Background, which a caller has no reason to raise.
func (b *Browser) Foreground() error {
	if !b.opts.Background {
		return errors.New("fake chrome: Foreground of a browser launched in the foreground")
	}
	if b.l.ForegroundErr != nil {
		return b.l.ForegroundErr
	}
	b.mu.Lock()
	b.foreground = true
	b.mu.Unlock()
	return nil
}

// Foregrounded reports whether Foreground raised the browser.
func (b *Browser) Foregrounded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.foreground
}

// Options returns the options the browser was launched with.
func (b *Browser) Options() bb.LaunchOptions { return b.opts }

// WaitReady waits for the launcher's ReadyDelay and returns its ReadyErr. It fails with
// an error wrapping chrome.ErrExited when the browser crashed or was closed first.
func (b *Browser) WaitReady(ctx context.Context) error {
	select {
	case <-b.exited:
		return fmt.Errorf("fake chrome %d: %w", b.pid, chrome.ErrExited)
	default:
	}
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.exited:
			return fmt.Errorf("fake chrome %d: %w", b.pid, chrome.ErrExited)
		case <-ctx.Done():
			return fmt.Errorf("wait for fake chrome %d: %w", b.pid, ctx.Err())
		}
	}
	return b.ready
}

// SetEgress records h; Egress returns it.
func (b *Browser) SetEgress(h func(net.Conn)) {
	b.mu.Lock()
	b.egress = h
	b.mu.Unlock()
}

// Egress returns the handler of the last SetEgress, or nil.
func (b *Browser) Egress() func(net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.egress
}

// PID returns a made-up process id, unique per Launcher.
func (b *Browser) PID() int { return b.pid }

// Pages lists the tabs the launcher's DevToolsURL serves at /json/list (a test server
// standing in for Chromium's DevTools HTTP endpoint), as internal/chrome does.
func (b *Browser) Pages(ctx context.Context) ([]bb.LivePage, error) {
	base, err := cdp.HTTPBase(b.url)
	if err != nil {
		return nil, err
	}
	ts, err := cdp.List(ctx, base)
	if err != nil {
		return nil, err
	}
	return chrome.PageTargets(ts), nil
}

// DevToolsURL returns the launcher's DevToolsURL.
func (b *Browser) DevToolsURL() string { return b.url }

// Dir returns RunDir/<SessionID>; it does not exist.
func (b *Browser) Dir() string { return b.dir }

// Exited returns a channel closed by Crash or Close.
func (b *Browser) Exited() <-chan struct{} { return b.exited }

// Crash simulates the browser process dying: Exited is closed. Close still counts as
// a close afterwards, as it would with a real browser whose files must go.
func (b *Browser) Crash() { b.exitOnce.Do(func() { close(b.exited) }) }

// Kill records the kill and makes the process exit, as SIGKILL does (bb.Killer).
func (b *Browser) Kill() error {
	b.mu.Lock()
	b.killed = true
	b.mu.Unlock()
	b.Crash()
	return nil
}

// Killed reports whether Kill was called.
func (b *Browser) Killed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.killed
}

// Close marks the browser closed and closes Exited. It is idempotent.
func (b *Browser) Close(ctx context.Context) error {
	b.Crash()
	b.mu.Lock()
	stop := b.stop
	b.closeCalls++
	first := b.closeCalls == 1
	b.mu.Unlock()
	stop()
	if first {
		b.l.mu.Lock()
		b.l.closed++
		b.l.mu.Unlock()
		if b.l.RunDir != "" {
			return os.RemoveAll(b.dir)
		}
	}
	return nil
}

// Closed reports whether Close was called.
func (b *Browser) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closeCalls > 0
}
