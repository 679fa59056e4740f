package chrome

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// BareLauncher launches bare Chromium: the binary and flags a Launcher used for a real
// browser (BareCommand), with a fresh profile each time, and nothing else of browserd's
// (no sandbox, no pool, no readiness polling). The bench compares browserd with it.
type BareLauncher struct {
	path   string
	args   []string // with the --user-data-dir flag at index udd
	udd    int
	runDir string
	seq    atomic.Int64
}

// NewBareLauncher returns a BareLauncher for the command line of the browser a Launcher
// started as process pid, whose browsers live in directories under runDir.
func NewBareLauncher(pid int, runDir string) (*BareLauncher, error) {
	path, args, err := BareCommand(pid)
	if err != nil {
		return nil, err
	}
	l := &BareLauncher{path: path, args: args, udd: -1, runDir: runDir}
	for i, a := range l.args {
		if strings.HasPrefix(a, "--user-data-dir=") {
			l.udd = i
		}
	}
	if l.udd < 0 {
		return nil, fmt.Errorf("browser %d: no --user-data-dir in %q", pid, args)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	return l, nil
}

// Command returns the binary and flags the browsers are launched with (each with its
// own --user-data-dir in place of the one shown).
func (l *BareLauncher) Command() (path string, args []string) {
	return l.path, append([]string(nil), l.args...)
}

// BareBrowser is one bare Chromium; BareLauncher.Stop ends it.
type BareBrowser struct {
	cmd      *exec.Cmd
	pgid     int
	dir      string
	wsURL    string
	stderr   *os.File
	readDone chan struct{}
	tail     []string // output before the DevTools line, for errors
}

// DevToolsURL returns the browser-level DevTools websocket URL Chromium announced.
func (b *BareBrowser) DevToolsURL() string { return b.wsURL }

// PGID returns the browser's process group, which holds all its processes but the
// crashpad handler.
func (b *BareBrowser) PGID() int { return b.pgid }

// Launch starts a bare Chromium and returns once it announced its DevTools socket.
func (l *BareLauncher) Launch(ctx context.Context) (*BareBrowser, error) {
	dir := filepath.Join(l.runDir, strconv.FormatInt(l.seq.Add(1), 10))
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{dir, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	args := append([]string(nil), l.args...)
	args[l.udd] = "--user-data-dir=" + filepath.Join(dir, "profile")
	cmd := exec.Command(l.path, args...)
	cmd.Dir = dir
	// As Launcher does: Chromium's singleton socket and crashpad database go inside
	// dir, unless the socket path would be too long for Chromium (then Reap removes the
	// singleton dir through the profile's SingletonSocket link).
	cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+tmp)
	if len(tmp)+len("/org.chromium.Chromium.XXXXXX/SingletonSocket") <= 107 {
		cmd.Env = append(cmd.Env, "TMPDIR="+tmp, "TMP="+tmp, "TEMP="+tmp)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close() // the child has its copy
	if err != nil {
		r.Close() // nothing was read
		return nil, err
	}
	b := &BareBrowser{cmd: cmd, pgid: cmd.Process.Pid, dir: dir, stderr: r, readDone: make(chan struct{})}
	urlc := make(chan string, 1)
	go b.readStderr(urlc) // ends at EOF or when Stop closes the pipe; Stop waits for it
	select {
	case u, ok := <-urlc:
		if ok {
			b.wsURL = u
			return b, nil
		}
		<-b.readDone
		err = fmt.Errorf("bare chromium exited before announcing its DevTools socket; output: %s",
			strings.Join(b.tail, " | "))
	case <-ctx.Done():
		err = ctx.Err()
	}
	return nil, errors.Join(err, l.Stop(context.WithoutCancel(ctx), b))
}

// readStderr sends the DevTools URL on urlc (closing it at EOF) and drains the pipe.
func (b *BareBrowser) readStderr(urlc chan<- string) {
	defer close(b.readDone)
	sent := false
	sc := bufio.NewScanner(b.stderr)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if u, ok := parseDevToolsLine(sc.Text()); ok && !sent {
			urlc <- u
			sent = true
		}
		if !sent && !bytes.Contains(sc.Bytes(), []byte("dbus")) && len(b.tail) < 20 {
			b.tail = append(b.tail, sc.Text()) // read by Launch only after readDone
		}
	}
	if !sent {
		close(urlc)
	}
}

// Kill sends SIGKILL to the browser's process group; Stop finishes the clean-up.
func (b *BareBrowser) Kill() error {
	if err := syscall.Kill(-b.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill bare chromium: %w", err)
	}
	return nil
}

// Stop kills b, waits for it, and removes everything it left (its crashpad handler
// runs in a session of its own and is found by its command line).
func (l *BareLauncher) Stop(ctx context.Context, b *BareBrowser) error {
	err := b.Kill()
	_ = b.cmd.Wait() // killed: the exit status says so and nothing more
	err = errors.Join(err, WaitGroupGone(ctx, b.pgid))
	if _, rerr := ReapDir(ctx, l.runDir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	b.stderr.Close() // unblocks readStderr if a stray process still holds the pipe
	<-b.readDone
	if rerr := os.RemoveAll(b.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// WaitGroupGone waits (a minute at most) until process group pgid has no process left:
// a browser is gone only when every process it started is (the bench waits for both
// browserd's and bare browsers this way).
func WaitGroupGone(ctx context.Context, pgid int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("browser process group %d still alive: %w", pgid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
