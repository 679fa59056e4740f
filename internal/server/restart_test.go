package server

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite"
)

// buildBinary builds cmd/browserd into a temporary directory and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skipf("no go command to build browserd: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "browserd")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/browserd/browserd/cmd/browserd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procServer is `browserd serve` running as a child process.
type procServer struct {
	URL, DataDir string
	cmd          *exec.Cmd
	stdout       *output
	exited       chan struct{}
	waitErr      error // valid once exited is closed
}

// startProcess runs `bin serve --addr 127.0.0.1:0 --data-dir dataDir args…` with the
// test's environment minus BROWSERD_* plus BROWSERD_API_KEY=testAPIKey, and waits until
// it listens. Cleanup kills it if it still runs and reaps the browsers it left, so that a
// failing test leaves nothing behind either.
func startProcess(t *testing.T, bin, dataDir string, args ...string) *procServer {
	t.Helper()
	searchable(t, dataDir)
	p := &procServer{DataDir: dataDir, stdout: newOutput(nil), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--allow-private-networks"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BROWSERD_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "BROWSERD_API_KEY="+testAPIKey)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = newOutput(t.Output())
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill() // the test failed before stopping it; it is exiting anyway
			<-p.exited
		}
		if t.Failed() {
			reap(t, dataDir)
		}
	})
	p.URL = p.stdout.waitFor(t, listening, p.exited, time.Minute)[1]
	return p
}

// signal sends sig to the server and waits (up to within) for it to exit.
func (p *procServer) signal(t *testing.T, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(within):
		t.Fatalf("server still running %v after %v", within, sig)
		return nil
	}
}

// reap kills whatever browsers of dataDir are left (test hygiene after a failure).
func reap(t *testing.T, dataDir string) {
	l, err := chrome.New(chrome.Config{RunDir: filepath.Join(dataDir, "run")})
	if err != nil {
		t.Errorf("reap: %v", err)
		return
	}
	defer l.Close() // removes its copy of the sandbox init
	if _, err := l.Reap(context.Background()); err != nil {
		t.Errorf("reap: %v", err)
	}
}

// storedSession reads a session straight from the server's database.
func storedSession(t *testing.T, dataDir, id string) *bb.Session {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dataDir, "browserd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestart runs the real binary: a server killed with SIGKILL leaves browsers and
// files that the next start on the same data dir cleans up, ending the session it had
// as ERROR; SIGTERM ends every session cleanly and exits 0.
func TestRestart(t *testing.T) {
	t.Parallel()
	chrometest.Chrome(t)
	bin := buildBinary(t)

	t.Run("kill -9", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		runDir := filepath.Join(dir, "run")
		// A warm browser too: the restart must clean up those as well.
		p1 := startProcess(t, bin, dir, "--pool-size", "1")
		var sess apiSession
		callJSON(t, p1.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{"keepAlive": true}, 201, &sess)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cdp := mustDial(t, ctx, sess.ConnectURL)
		if _, err := cdp.version(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p1.signal(t, syscall.SIGKILL, 10*time.Second); err == nil {
			t.Fatalf("server killed with SIGKILL exited cleanly")
		}
		// Chromium's main process has PDEATHSIG=SIGKILL; its helpers may outlive it
		// for a moment or, in another process group or session, for good. Either way
		// the next start must clean up: record what is left.
		time.Sleep(300 * time.Millisecond)
		t.Logf("processes left 300ms after kill -9: %d (browsers %d)",
			len(chrometest.Processes(t, runDir)), len(browserPIDs(t, runDir)))
		left, err := os.ReadDir(runDir)
		if err != nil || len(left) == 0 {
			t.Fatalf("run dir after kill -9: %d entries, %v; want the dead server's browser dirs", len(left), err)
		}
		if s := storedSession(t, dir, sess.ID); s.Status != bb.StatusRunning {
			t.Fatalf("stored status after kill -9 = %s; want RUNNING (nobody recorded the end yet)", s.Status)
		}

		p2 := startProcess(t, bin, dir, "--pool-size", "0")
		var got apiSession
		callJSON(t, p2.URL, "GET", "/v1/sessions/"+sess.ID, testAPIKey, nil, 200, &got)
		if got.Status != "ERROR" || got.EndedAt == "" {
			t.Errorf("session of the killed server after restart: %s, endedAt %q; want ERROR with endedAt", got.Status, got.EndedAt)
		}
		if s := storedSession(t, dir, sess.ID); s.EndReason == "" {
			t.Errorf("session ended by reconciliation has no end reason")
		} else {
			t.Logf("end reason: %q", s.EndReason)
		}
		assertNoLeaks(t, dir) // no browser of the first run, no leftover dir
		cu, err := url.Parse(sess.ConnectURL)
		if err != nil {
			t.Fatal(err)
		}
		cu.Host = strings.TrimPrefix(p2.URL, "http://")
		if c, resp, err := dialCDP(ctx, cu.String()); err == nil {
			c.c.CloseNow()
			t.Errorf("connect to the lost session succeeded")
		} else if resp == nil || resp.StatusCode < 400 {
			t.Errorf("connect to the lost session: %s; want an HTTP error", redactErr(err))
		}
		if err := p2.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("restarted server after SIGTERM: %v; want exit 0", err)
		}
		assertNoLeaks(t, dir)
	})

	t.Run("SIGTERM", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startProcess(t, bin, dir, "--pool-size", "1")
		var sess apiSession
		callJSON(t, p.URL, "POST", "/v1/sessions", testAPIKey, map[string]any{}, 201, &sess)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cdp := mustDial(t, ctx, sess.ConnectURL)
		if _, err := cdp.version(ctx); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- waitClosed(ctx, cdp) }() // a client reads all the time
		start := time.Now()
		if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Errorf("server exited with %d after SIGTERM; want 0", ee.ExitCode())
			} else {
				t.Error(err)
			}
		}
		t.Logf("SIGTERM → exit in %v", time.Since(start).Round(time.Millisecond))
		if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client connection at shutdown ended with %v; want close 1001", err)
		}
		s := storedSession(t, dir, sess.ID)
		if s.Status != bb.StatusCompleted || s.EndedAt.IsZero() {
			t.Errorf("stored session after SIGTERM: %s, endedAt %v; want COMPLETED with endedAt", s.Status, s.EndedAt)
		}
		assertNoLeaks(t, dir)
		for _, proc := range chrometest.Processes(t, dir) {
			t.Errorf("process left after SIGTERM: %s", proc)
		}
	})
}
