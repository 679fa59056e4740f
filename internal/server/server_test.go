package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// testAPIKey is the default project's key of the servers the tests start.
const testAPIKey = "bb_e2e_test_key_0123456789"

// output is an io.Writer that collects a process's output and lets a test wait for it.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
	tee     io.Writer     // also gets every write, when set
}

func newOutput(tee io.Writer) *output { return &output{changed: make(chan struct{}), tee: tee} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	if o.tee != nil {
		o.tee.Write(p) // best effort: the copy is only for the test log
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output matches re and returns the submatches. It fails the
// test at the deadline or when exited is closed first.
func (o *output) waitFor(t testing.TB, re *regexp.Regexp, exited <-chan struct{}, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		m := re.FindStringSubmatch(o.buf.String())
		changed := o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("server exited before printing %q; output:\n%s", re, o.String())
		case <-deadline.C:
			t.Fatalf("no %q after %v; output:\n%s", re, timeout, o.String())
		}
	}
}

// listening matches the line serve prints once it accepts connections.
var listening = regexp.MustCompile(`listening on (http://\S+)`)

// run runs `browserd serve|admin args…` in-process as cmd/browserd does (Serve, Admin)
// and returns the exit code: 0 success, 1 failure, 2 usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var err error
	switch args[0] {
	case "serve":
		err = Serve(ctx, args[1:], getenv, stdout, stderr, "dev")
	case "admin":
		err = Admin(ctx, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "browserd: unknown command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "browserd: %v\n", err)
		if errors.Is(err, ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// testServer is `browserd serve` run in-process through run().
type testServer struct {
	URL     string // http://127.0.0.1:port
	DataDir string
	stdout  *output
	stderr  *output // the logs
	cancel  context.CancelFunc
	exited  chan struct{}
	code    int // valid once exited is closed

	mu         sync.Mutex
	singletons []string // Chromium singleton dirs outside DataDir, checked after stop
	stopped    bool
}

// startServer runs `browserd serve --addr 127.0.0.1:0 --data-dir dataDir --pool-size 0 args…` with
// exactly the environment env, and waits until it listens. Cleanup stops it (if the test
// did not) and checks that nothing of its browsers is left.
func startServer(t testing.TB, dataDir string, env map[string]string, args ...string) *testServer {
	t.Helper()
	chrometest.Chrome(t) // skip without Chromium
	searchable(t, dataDir)
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{DataDir: dataDir, stdout: newOutput(nil), cancel: cancel, exited: make(chan struct{})}
	// No warm pool unless a test asks (a later --pool-size wins): fewer browsers to start.
	// Tests browse httptest servers on loopback.
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--pool-size", "0", "--allow-private-networks"}, args...)
	getenv := func(k string) string { return env[k] }
	s.stderr = newOutput(t.Output())
	go func() {
		defer close(s.exited)
		s.code = run(ctx, argv, getenv, s.stdout, s.stderr)
	}()
	t.Cleanup(func() { s.stop(t) })
	s.URL = s.stdout.waitFor(t, listening, s.exited, time.Minute)[1]
	return s
}

// defaultEnv is the environment of a server whose default project has testAPIKey.
func defaultEnv() map[string]string { return map[string]string{"BROWSERD_API_KEY": testAPIKey} }

// stop shuts the server down as SIGTERM would, checks that it exits with 0 and leaves no
// browser process, run dir entry or Chromium singleton dir.
func (s *testServer) stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.noteSingletons()
	s.cancel()
	select {
	case <-s.exited:
	case <-time.After(45 * time.Second):
		t.Fatalf("server did not stop within 45s")
	}
	if s.code != 0 {
		t.Errorf("serve exited with %d; want 0", s.code)
	}
	assertNoLeaks(t, s.DataDir)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.singletons {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("chromium singleton dir %s left behind (stat: %v)", d, err)
		}
	}
}

// searchable makes dataDir (if missing) and lets other users search it and its parents
// up to the temp dir, so that the browsers' directories stay in dataDir/run as root
// (internal/chrome/sandbox.go) and the tests find what they leave there.
func searchable(t testing.TB, dataDir string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		t.Fatal(err)
	}
	for d := dataDir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

// assertNoLeaks checks that no browser of dataDir runs and its run dir is empty.
func assertNoLeaks(t testing.TB, dataDir string) {
	t.Helper()
	chrometest.AssertNoLeaks(t, filepath.Join(dataDir, "run"))
}

// noteSingletons records where the running browsers put their singleton socket dirs,
// when that is outside the data dir (long paths), so that stop can check they are gone.
func (s *testServer) noteSingletons() {
	entries, _ := os.ReadDir(filepath.Join(s.DataDir, "run")) // none yet: nothing to note
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(s.DataDir, "run", e.Name(), "profile", "SingletonSocket"))
		if err != nil || strings.HasPrefix(target, s.DataDir) {
			continue
		}
		s.mu.Lock()
		if !slices.Contains(s.singletons, filepath.Dir(target)) {
			s.singletons = append(s.singletons, filepath.Dir(target))
		}
		s.mu.Unlock()
	}
}

// apiSession is the part of the API's Session object the tests read.
type apiSession struct {
	ID         string `json:"id"`
	ProjectID  string `json:"projectId"`
	Status     string `json:"status"`
	KeepAlive  bool   `json:"keepAlive"`
	EndedAt    string `json:"endedAt"`
	ConnectURL string `json:"connectUrl"`
	SigningKey string `json:"signingKey"`
}

// call does an API request with key (none when "") and returns the status and body.
func call(t testing.TB, base, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-BB-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// callJSON does an API request, checks the status and decodes the body into out.
func callJSON(t testing.TB, base, method, path, key string, body any, want int, out any) {
	t.Helper()
	code, b := call(t, base, method, path, key, body)
	if code != want {
		t.Fatalf("%s %s = %d %s; want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// create creates a session with key and body (nil: {}).
func (s *testServer) create(t testing.TB, key string, body map[string]any) apiSession {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	var sess apiSession
	callJSON(t, s.URL, "POST", "/v1/sessions", key, body, http.StatusCreated, &sess)
	if sess.Status != "RUNNING" || sess.ConnectURL == "" || sess.SigningKey == "" {
		t.Fatalf("created session %+v; want RUNNING with connectUrl and signingKey", sess)
	}
	s.noteSingletons()
	return sess
}

func (s *testServer) session(t testing.TB, key, id string) apiSession {
	t.Helper()
	var sess apiSession
	callJSON(t, s.URL, "GET", "/v1/sessions/"+id, key, nil, http.StatusOK, &sess)
	return sess
}

func (s *testServer) release(t testing.TB, key, id string) apiSession {
	t.Helper()
	var sess apiSession
	callJSON(t, s.URL, "POST", "/v1/sessions/"+id, key, map[string]any{"status": "REQUEST_RELEASE"}, http.StatusOK, &sess)
	return sess
}

// waitStatus polls a session until it has status want, and fails after within.
func (s *testServer) waitStatus(t testing.TB, key, id, want string, within time.Duration) apiSession {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		sess := s.session(t, key, id)
		if sess.Status == want {
			return sess
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s is %s after %v; want %s", id, sess.Status, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browserPIDs returns the main Chromium processes (no --type= flag) whose
// --user-data-dir lies inside dir.
func browserPIDs(t testing.TB, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.Split(string(cmdline), "\x00")
		// bubblewrap and the sandbox's init carry Chromium's flags too.
		browser, inDir := filepath.Base(argv[0]) != "bwrap" && filepath.Base(argv[0]) != "nice" && argv[0] != "/.browserd-init", false
		for _, arg := range argv {
			if strings.HasPrefix(arg, "--type=") {
				browser = false
			}
			if v, ok := strings.CutPrefix(arg, "--user-data-dir="); ok && strings.HasPrefix(v, dir+"/") {
				inDir = true
			}
		}
		if browser && inDir { // a zombie has an empty cmdline
			pids = append(pids, pid)
		}
	}
	return pids
}
