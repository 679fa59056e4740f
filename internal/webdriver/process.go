package webdriver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotFound is returned by FindChromedriver when no chromedriver binary is found.
var ErrNotFound = errors.New("webdriver: no chromedriver binary found")

// FindChromedriver returns the chromedriver to run: path when given (it must exist),
// else chromedriver on PATH, else Debian's /usr/bin/chromedriver (package chromium-driver).
func FindChromedriver(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("webdriver: chromedriver %q: %w", path, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("looked for chromedriver on PATH, /usr/bin and /usr/lib/chromium: %w", ErrNotFound)
}

// startedRE matches chromedriver's announcement of the port it bound with --port=0.
var startedRE = regexp.MustCompile(`started successfully on port (\d+)`)

const (
	tailLines  = 8
	maxLineLen = 1024
	// killTimeout bounds the wait for a SIGKILLed chromedriver to be reaped.
	killTimeout = 10 * time.Second
)

// process is one running chromedriver in its own process group. Two goroutines follow
// it, both waited for by stop: one waits for the process (exit path: it exits, at the
// latest when stop kills it), one reads its output (exit path: EOF once the group is gone).
type process struct {
	pid    int
	addr   string // 127.0.0.1:PORT
	log    *slog.Logger
	exited chan struct{}
	read   chan struct{} // closed when the output reader is done
	port   chan int      // the announced port, sent once

	waitErr error // set before exited is closed

	mu   sync.Mutex
	tail []string

	stopOnce  sync.Once
	unreserve func() // gives the port back once stopped; nil when not reserved
}

// startProcess runs chromedriver on a free loopback port (--port=0; it announces the
// port it bound) and waits until it listens, ctx ends or it exits. The process belongs
// to the caller, who must call stop.
func startProcess(ctx context.Context, path string, log *slog.Logger, ports interface {
	Reserve(port uint16) (release func())
}) (*process, error) {
	// Not CommandContext: the process outlives the request that starts it.
	cmd := exec.Command(path, "--port=0")
	// Nothing of the server's environment (its API key, tokens) reaches chromedriver
	// (security review F9).
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}
	// Its own group, killed as a whole; SIGKILL if browserd dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("chromedriver output pipe: %w", err)
	}
	// An *os.File keeps exec from copying in a goroutine of its own that Wait would wait on.
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start chromedriver: %w", err)
	}
	w.Close() // the child has its copy; EOF on r once every process of the group is gone
	p := &process{
		pid:    cmd.Process.Pid,
		log:    log.With("pid", cmd.Process.Pid),
		exited: make(chan struct{}),
		read:   make(chan struct{}),
		port:   make(chan int, 1),
	}
	go func() { // waited for by stop, through exited
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.readOutput(r) // waited for by stop, through read

	select {
	case port := <-p.port:
		p.addr = "127.0.0.1:" + strconv.Itoa(port)
		if ports != nil {
			p.unreserve = ports.Reserve(uint16(port))
		}
		return p, nil
	case <-p.exited:
		p.stop()
		return nil, fmt.Errorf("chromedriver exited before listening (%v): %s", p.waitErr, p.lastOutput())
	case <-ctx.Done():
		p.stop()
		return nil, fmt.Errorf("chromedriver did not start listening: %w", ctx.Err())
	}
}

// readOutput logs chromedriver's output at debug level, keeps its last lines for error
// messages and picks up the port. It reads until EOF so that chromedriver never blocks.
func (p *process) readOutput(r *os.File) {
	defer close(p.read)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if len(line) > maxLineLen {
			line = line[:maxLineLen] + "…"
		}
		p.log.Debug("chromedriver output", "line", line)
		if !sent && startupLine(line) {
			if m := startedRE.FindStringSubmatch(line); m != nil {
				if port, err := strconv.Atoi(m[1]); err == nil && port > 0 && port < 65536 {
					p.port <- port
					sent = true
				}
			}
			continue // the banner says nothing about a failure
		}
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > tailLines {
			p.tail = p.tail[1:]
		}
		p.mu.Unlock()
	}
	// A line longer than the buffer ends the scan early; keep draining the pipe.
	buf := make([]byte, 32<<10)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// startupLine reports whether line is part of chromedriver's start banner.
func startupLine(line string) bool {
	for _, s := range []string{"Starting ChromeDriver", "Only local connections are allowed", "Please see https://", "started successfully on port"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// lastOutput returns chromedriver's last output lines, joined for an error message.
func (p *process) lastOutput() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return "(no output)"
	}
	return strings.Join(p.tail, " | ")
}

// exitStatus describes how the process ended ("" while it runs).
func (p *process) exitStatus() string {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return "exit status 0"
		}
		return p.waitErr.Error()
	default:
		return ""
	}
}

// stop kills chromedriver's process group and waits until the process is reaped and its
// output read. chromedriver holds no state worth a graceful exit: in attach mode the
// browser is not its own. It is idempotent.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		deadline := time.Now().Add(killTimeout)
		for {
			err := syscall.Kill(-p.pid, syscall.SIGKILL)
			reaped := false
			select {
			case <-p.exited:
				reaped = true
			default:
			}
			if reaped && errors.Is(err, syscall.ESRCH) {
				break // the leader is reaped and no process of its group is left
			}
			if time.Now().After(deadline) {
				p.log.Error("chromedriver process group still alive after SIGKILL", "err", err)
				return // its port stays reserved: it may still listen
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case <-p.read:
		case <-time.After(killTimeout):
			p.log.Error("chromedriver output still open after its process group was killed")
		}
		if p.unreserve != nil {
			p.unreserve()
		}
	})
}
