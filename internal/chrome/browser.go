package chrome

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
)

// ErrExited is returned by WaitReady when the browser process exits before it is ready.
var ErrExited = errors.New("chrome: process exited")

const (
	// pollInterval is how often WaitReady asks /json/list for the first page.
	pollInterval = 10 * time.Millisecond
	// tailLines and maxLineLen bound the stderr kept for error messages.
	tailLines  = 20
	maxLineLen = 512
	// killTimeout bounds the wait for a SIGKILLed process group to disappear.
	killTimeout = 10 * time.Second
)

// Browser is one running Chromium process tree. It implements bb.Browser.
type Browser struct {
	pid   int // also the process group id (Setpgid)
	dir   string
	grace time.Duration
	log   *slog.Logger

	stderr   *os.File
	wg       sync.WaitGroup // the wait and stderr goroutines
	exited   chan struct{}  // closed after waitErr is set
	waitErr  error
	urlReady chan struct{} // closed when url is set
	readDone chan struct{} // closed when stderr reached EOF or was closed

	mu        sync.Mutex
	url       string
	tail      []string
	stopAfter func() bool // unregisters the ctx-triggered Close

	closeOnce sync.Once
	closeErr  error
	stopped   sync.Once // Stop, also run by Close
	stopErr   error

	link    *link  // the sandbox's control channel and DevTools forwarder
	release func() // gives back the uid and the forwarder's port, once stopped

	fgMu       sync.Mutex // Foreground (priority.go)
	background bool       // launched at background priority and not raised yet
	nice       int        // the niceness Foreground raises to (Config.Nice)
}

var (
	_ bb.ProfileBrowser = (*Browser)(nil)
	_ bb.Killer         = (*Browser)(nil)
)

// newBrowser takes over a started cmd whose stdout and stderr write to stderr's pipe.
// Two goroutines, waited for by Close, follow it: one waits for the main process (exit
// path: the process exits, at the latest when Close kills it), one reads stderr (exit
// path: EOF once the group is gone, or Close closing the pipe). ctx owns the browser.
func newBrowser(ctx context.Context, cmd *exec.Cmd, stderr *os.File, dir string, grace time.Duration, log *slog.Logger, k *link, release func()) *Browser {
	b := &Browser{
		link:    k,
		release: release,
		pid:     cmd.Process.Pid,
		dir:     dir,
		grace:   grace,
		log:     log,
		// No keep-alive: no idle connection (and its goroutines) outlives a poll.
		stderr:   stderr,
		exited:   make(chan struct{}),
		urlReady: make(chan struct{}),
		readDone: make(chan struct{}),
	}
	b.wg.Go(func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	})
	b.wg.Go(b.readStderr)
	b.mu.Lock() // the callback's Close takes mu: it sees stopAfter set
	b.stopAfter = context.AfterFunc(ctx, func() {
		if err := b.Close(context.WithoutCancel(ctx)); err != nil {
			b.log.Warn("close chrome", "err", err)
		}
	})
	b.mu.Unlock()
	return b
}

// PID returns the main process id, which is also the process group id.
func (b *Browser) PID() int { return b.pid }

// Dir returns the browser's directory: profile/, tmp/ and downloads/.
func (b *Browser) Dir() string { return b.dir }

// Exited returns a channel closed when the main process has exited.
func (b *Browser) Exited() <-chan struct{} { return b.exited }

// SetEgress sets where the browser's network connections go from now on: every
// connection Chromium opens to its proxy is passed to h (the session's proxy). Before
// the first call, and with nil, they are refused: a browser has no network of its own.
func (b *Browser) SetEgress(h func(net.Conn)) { b.link.setEgress(h) }

// DevToolsURL returns the browser-level websocket URL, or "" before Chromium announced it.
func (b *Browser) DevToolsURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.url
}

// readStderr keeps the last lines of Chromium's output and picks up the DevTools URL.
// It reads until EOF so that Chromium never blocks on a full pipe.
func (b *Browser) readStderr() {
	defer close(b.readDone)
	r := bufio.NewReaderSize(b.stderr, 4096)
	var line []byte
	for {
		frag, more, err := r.ReadLine()
		if n := min(len(frag), maxLineLen-len(line)); n > 0 {
			line = append(line, frag[:n]...)
		}
		if err != nil {
			if len(line) > 0 {
				b.addLine(string(line))
			}
			return
		}
		if !more {
			b.addLine(string(line))
			line = line[:0]
		}
	}
}

func (b *Browser) addLine(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.url == "" {
		if u, ok := parseDevToolsLine(line); ok {
			// Chromium names its port inside the sandbox; the server reaches it
			// through the forwarder.
			if pu, err := url.Parse(u); err == nil {
				pu.Host = b.link.addr()
				b.url = pu.String()
				close(b.urlReady)
			}
		}
	}
	// About 30 lines per start complain that there is no D-Bus; they would push the
	// interesting lines out of the tail.
	if strings.Contains(line, "/dbus/") || strings.Contains(line, "dbus/bus.cc") {
		return
	}
	if len(b.tail) == tailLines {
		b.tail = append(b.tail[:0], b.tail[1:]...)
	}
	b.tail = append(b.tail, line)
}

// stderrTail returns the last lines Chromium wrote, joined by " | ".
func (b *Browser) stderrTail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.tail, " | ")
}

// WaitReady waits until the DevTools URL is known and the browser has a page target.
// It fails with ErrExited when the process exits first, or with ctx's error; both
// errors carry the end of Chromium's stderr.
func (b *Browser) WaitReady(ctx context.Context) error {
	select {
	case <-b.urlReady:
	case <-b.exited:
		return b.exitError()
	case <-ctx.Done():
		return fmt.Errorf("wait for chrome devtools line (stderr: %s): %w", b.stderrTail(), ctx.Err())
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		pages, err := b.Pages(pctx)
		cancel()
		if len(pages) > 0 {
			return nil
		}
		select {
		case <-t.C:
		case <-b.exited:
			return b.exitError()
		case <-ctx.Done():
			return fmt.Errorf("wait for chrome page target (last poll: %v; stderr: %s): %w", err, b.stderrTail(), ctx.Err())
		}
	}
}

// Pages returns the browser's open tabs from DevTools' /json/list, in Chromium's order
// there: the most recently activated first.
func (b *Browser) Pages(ctx context.Context) ([]bb.LivePage, error) {
	base, err := cdp.HTTPBase(b.DevToolsURL())
	if err != nil {
		return nil, err
	}
	ts, err := cdp.List(ctx, base)
	if err != nil {
		return nil, err
	}
	return PageTargets(ts), nil
}

// PageTargets keeps the tabs of a /json/list: targets of type page, without DevTools'
// own windows (browser UI, workers and iframes are other types).
func PageTargets(ts []cdp.Target) []bb.LivePage {
	pages := []bb.LivePage{}
	for _, t := range ts {
		if t.Type != "page" || strings.HasPrefix(t.URL, "devtools://") {
			continue
		}
		pages = append(pages, bb.LivePage{ID: t.ID, URL: t.URL, Title: t.Title, FaviconURL: t.FaviconURL})
	}
	return pages
}

// exitError describes an early exit; it waits briefly for the rest of stderr.
func (b *Browser) exitError() error {
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-b.readDone:
	case <-t.C:
	}
	return fmt.Errorf("chrome exited before it was ready (%v; stderr: %s): %w", b.waitErr, b.stderrTail(), ErrExited)
}

// Close stops the browser and removes its directory. It asks Chromium to close over
// CDP (Browser.close; SIGTERM to the main process when that fails), waits up to the
// grace period (or until ctx ends) for it to exit, then kills the whole process group
// and waits until no process of the group is left. Browser.close is used because it
// flushes cookies to the profile, which SIGTERM often does not (measured: 3 of 3 vs 1
// of 4). Close is idempotent and safe for concurrent use; every call returns the first
// call's result once the work is done.
func (b *Browser) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.close(ctx) })
	return b.closeErr
}

// Stop stops the browser as Close does but keeps its directory, so that the profile
// can be read once every process is gone (bb.ProfileBrowser). Close removes the files
// later. Stop is idempotent and safe for concurrent use.
func (b *Browser) Stop(ctx context.Context) error {
	if err := b.stopOnce(ctx, max(b.grace, keepGrace)); err != nil {
		return fmt.Errorf("stop chrome %d: %w", b.pid, err)
	}
	return nil
}

// ProfileDir returns the browser's user-data-dir.
func (b *Browser) ProfileDir() string { return filepath.Join(b.dir, "profile") }

func (b *Browser) stopOnce(ctx context.Context, grace time.Duration) error {
	b.stopped.Do(func() { b.stopErr = b.stop(ctx, grace) })
	return b.stopErr
}

// keepGrace is the least time Stop gives Chromium to exit after Browser.close: a
// killed browser may not have written its cookies, and Stop is called to save them.
const keepGrace = 10 * time.Second

func (b *Browser) close(ctx context.Context) error {
	var errs []error
	if err := b.stopOnce(ctx, b.grace); err != nil {
		errs = append(errs, err)
	}
	// The singleton socket dir is in the sandbox's /tmp, which is inside dir.
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove browser dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close chrome %d: %w", b.pid, err)
	}
	return nil
}

// stop ends every process of the browser and waits for them, giving it grace to exit
// on its own first.
func (b *Browser) stop(ctx context.Context, grace time.Duration) error {
	b.mu.Lock()
	stop := b.stopAfter
	b.mu.Unlock()
	stop() // false when the ctx-triggered Close is this call

	start := time.Now()
	select {
	case <-b.exited:
	default:
		gctx, cancel := context.WithTimeout(ctx, grace)
		via, err := "cdp", error(nil)
		if u := b.DevToolsURL(); u == "" || closeBrowser(gctx, u) != nil {
			// No CDP: SIGTERM to Chromium (through the sandbox's init) is the next best
			// stop. The cause is not worth reporting, as the group is killed below anyway.
			via, err = "sigterm", b.link.terminate()
		}
		if err == nil { // else the process is gone already
			select {
			case <-b.exited:
			case <-gctx.Done():
				if ctx.Err() == nil {
					b.log.Warn("chrome did not stop in time", "via", via, "grace", grace)
				}
			}
		}
		cancel()
	}
	// The group is killed even after a clean exit: zygotes and renderers may linger.
	var errs []error
	if err := killGroup(b.pid, b.exited); err != nil {
		errs = append(errs, err)
	}
	// The crashpad handler runs in a session of its own; it usually exits with the
	// browser, but must be gone before its database under dir is removed.
	groups, err := findGroups(b.dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, g := range groups {
		if err := killGroup(g.pgid, nil); err != nil {
			errs = append(errs, err)
		}
	}
	b.stderr.Close() // unblocks readStderr if something outside the group holds the pipe
	b.wg.Wait()
	b.link.close()
	b.release()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b.log.Info("chrome stopped", "exit", fmt.Sprint(b.waitErr), "took", time.Since(start))
	return nil
}

// killGroup SIGKILLs process group pgid until none of its processes is left. exited, if
// not nil, is closed when the group leader has been waited for.
func killGroup(pgid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(killTimeout)
	for {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill process group %d: %w", pgid, err)
		}
		leaderGone := exited == nil
		if !leaderGone {
			select {
			case <-exited:
				leaderGone = true
			default:
			}
		}
		if leaderGone && (errors.Is(err, syscall.ESRCH) || !groupAlive(pgid)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still alive after SIGKILL", pgid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closeBrowser sends Browser.close over the browser's DevTools websocket and waits for
// the reply or for the connection to drop with the browser.
func closeBrowser(ctx context.Context, wsURL string) error {
	c, err := cdp.Dial(ctx, wsURL, cdp.Options{})
	if err != nil {
		return err
	}
	defer c.CloseNow() // the browser is going away; no close handshake to wait for
	// An error answer usually means the browser closed the socket before it answered,
	// which is success: either outcome means the command was delivered.
	answered := make(chan struct{})
	if err := c.Send(ctx, "", "Browser.close", nil, func(json.RawMessage, error) { close(answered) }); err != nil {
		return err
	}
	select {
	case <-answered:
	case <-ctx.Done():
	}
	return nil
}

// Kill kills the browser's process group at once, without the graceful stop Close and
// Stop begin with, and waits until it is gone (bb.Killer): a node fenced out of its
// cluster must have every browser gone before its peers count it lost. Close (or Stop)
// still kills what is left in other groups and removes the files.
func (b *Browser) Kill() error {
	if err := killGroup(b.pid, b.exited); err != nil {
		return fmt.Errorf("kill chrome %d: %w", b.pid, err)
	}
	return nil
}
