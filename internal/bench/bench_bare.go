package bench

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

	"github.com/browserd/browserd/internal/chrome"
)

// benchBareTemplate launches bare Chromium: the binary and flags browserd's launcher
// used for a real session (read from /proc/<pid>/cmdline), with a fresh profile, and
// nothing else (no server, no pool, no readiness polling).
type benchBareTemplate struct {
	path   string
	args   []string // with the --user-data-dir flag at index udd
	udd    int
	runDir string
	seq    atomic.Int64
}

func benchBareFromPID(pid int, runDir string) (*benchBareTemplate, error) {
	path, args, err := chrome.BareCommand(pid)
	if err != nil {
		return nil, err
	}
	t := &benchBareTemplate{path: path, args: args, udd: -1, runDir: runDir}
	for i, a := range t.args {
		if strings.HasPrefix(a, "--user-data-dir=") {
			t.udd = i
		}
	}
	if t.udd < 0 {
		return nil, fmt.Errorf("browser %d: no --user-data-dir in %q", pid, args)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	return t, nil
}

// benchBareBrowser is one bare Chromium.
type benchBareBrowser struct {
	cmd      *exec.Cmd
	pgid     int
	dir      string
	wsURL    string
	stderr   *os.File
	readDone chan struct{}
	tail     []string // output before the DevTools line, for errors
}

// launch starts a bare Chromium and returns once it announced its DevTools socket.
func (t *benchBareTemplate) launch(ctx context.Context) (*benchBareBrowser, error) {
	dir := filepath.Join(t.runDir, strconv.FormatInt(t.seq.Add(1), 10))
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{dir, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	args := append([]string(nil), t.args...)
	args[t.udd] = "--user-data-dir=" + filepath.Join(dir, "profile")
	cmd := exec.Command(t.path, args...)
	cmd.Dir = dir
	// As chrome.Launcher does: Chromium's singleton socket and crashpad database go
	// inside dir, unless the socket path would be too long for Chromium (then Reap
	// removes the singleton dir through the profile's SingletonSocket link).
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
	b := &benchBareBrowser{cmd: cmd, pgid: cmd.Process.Pid, dir: dir, stderr: r, readDone: make(chan struct{})}
	urlc := make(chan string, 1)
	go b.readStderr(urlc) // ends at EOF or when stop closes the pipe; stop waits for it
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
	return nil, errors.Join(err, t.stop(context.WithoutCancel(ctx), b))
}

// readStderr sends the DevTools URL on urlc (closing it at EOF) and drains the pipe.
func (b *benchBareBrowser) readStderr(urlc chan<- string) {
	defer close(b.readDone)
	sent := false
	sc := bufio.NewScanner(b.stderr)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if u, ok := bytes.CutPrefix(sc.Bytes(), []byte("DevTools listening on ")); ok && !sent {
			urlc <- strings.TrimSpace(string(u))
			sent = true
		}
		if !sent && !bytes.Contains(sc.Bytes(), []byte("dbus")) && len(b.tail) < 20 {
			b.tail = append(b.tail, sc.Text()) // read by launch only after readDone
		}
	}
	if !sent {
		close(urlc)
	}
}

// kill sends SIGKILL to the browser's process group; stop finishes the clean-up.
func (b *benchBareBrowser) kill() error {
	if err := syscall.Kill(-b.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill bare chromium: %w", err)
	}
	return nil
}

// stop kills b, waits for it, and removes everything it left (its crashpad handler
// runs in a session of its own and is found by its command line).
func (t *benchBareTemplate) stop(ctx context.Context, b *benchBareBrowser) error {
	err := b.kill()
	_ = b.cmd.Wait() // killed: the exit status says so and nothing more
	err = errors.Join(err, benchWaitGroupGone(ctx, b.pgid))
	if _, rerr := chrome.ReapDir(ctx, t.runDir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	b.stderr.Close() // unblocks readStderr if a stray process still holds the pipe
	<-b.readDone
	if rerr := os.RemoveAll(b.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
