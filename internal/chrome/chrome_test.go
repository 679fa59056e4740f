package chrome_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// closeTimeout bounds Close in tests; a stop takes well under a second.
const closeTimeout = 30 * time.Second

func launchReady(t *testing.T, l *chrome.Launcher, opts bb.LaunchOptions) bb.Browser {
	t.Helper()
	b, err := l.Launch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// group returns the live, non-zombie processes of process group pgid.
func group(t testing.TB, pgid int) []int {
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
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// singletonDir returns the directory Chromium's SingletonSocket lives in, as the server
// sees it: Chromium's link names it in the sandbox's /tmp, the browser's tmp dir.
func singletonDir(t *testing.T, b bb.Browser) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(b.Dir(), "profile", "SingletonSocket"))
	if err != nil {
		t.Fatalf("singleton link: %v", err)
	}
	rel, ok := strings.CutPrefix(filepath.Dir(target), "/tmp/")
	if !ok || !strings.HasPrefix(rel, "org.chromium.Chromium.") || strings.Contains(rel, "/") {
		t.Fatalf("singleton link %s is not in the sandbox's /tmp", target)
	}
	return filepath.Join(b.Dir(), "tmp", rel)
}

// chromiumMain returns the pid of b's Chromium browser process (inside the sandbox,
// below bubblewrap and the init).
func chromiumMain(t *testing.T, b bb.Browser) int {
	t.Helper()
	for _, pid := range group(t, b.PID()) {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == "chromium" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--type=") }) {
			return pid
		}
	}
	t.Fatalf("no Chromium browser process in group %d", b.PID())
	return 0
}

// assertGone checks that nothing of b is left: process group, directory, singleton dir.
func assertGone(t *testing.T, b bb.Browser, singleton string) {
	t.Helper()
	select {
	case <-b.Exited():
	default:
		t.Error("Exited not closed after Close")
	}
	if pids := group(t, b.PID()); len(pids) > 0 {
		t.Errorf("processes of group %d left: %v", b.PID(), pids)
	}
	for _, p := range []string{b.Dir(), singleton} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (stat: %v)", p, err)
		}
	}
}

func TestLaunch(t *testing.T) {
	l := chrometest.RealLauncher(t)
	vp := bb.Viewport{Width: 1024, Height: 700}
	start := time.Now()
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "s1", Viewport: vp})
	t.Logf("spawn → ready: %v", time.Since(start))

	if got, want := b.Dir(), filepath.Join(l.RunDir(), "s1"); got != want {
		t.Errorf("Dir() = %q; want %q", got, want)
	}
	if !strings.HasPrefix(b.DevToolsURL(), "ws://127.0.0.1:") {
		t.Errorf("DevToolsURL() = %q", b.DevToolsURL())
	}
	main := chromiumMain(t, b)
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(main) + "/cwd"); err != nil || cwd != b.Dir() {
		t.Errorf("cwd = %q, %v; want %q", cwd, err, b.Dir())
	}
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(main) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TMPDIR=/tmp", "XDG_CONFIG_HOME=/tmp/.config"} {
		if !slices.Contains(strings.Split(string(environ), "\x00"), want) {
			t.Errorf("environment lacks %s", want)
		}
	}
	// The sandbox's /tmp is the browser's tmp dir: the singleton socket goes with it.
	singleton := singletonDir(t, b)
	if _, err := os.Lstat(singleton); err != nil {
		t.Errorf("singleton dir: %v", err)
	}
	if n := len(group(t, b.PID())); n < 2 {
		t.Errorf("process group has %d processes; want the browser and its children", n)
	}
	if pss, err := b.(bb.MemoryReporter).Memory(); err != nil || pss < 10<<20 {
		t.Errorf("Memory() = %d, %v; want the PSS of a whole browser (tens of MiB)", pss, err)
	} else {
		t.Logf("PSS of the process group: %d MiB", pss>>20)
	}

	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	c := dialCDP(t, b.DevToolsURL())
	var version struct {
		Product string `json:"product"`
	}
	if err := c.Call(ctx, "", "Browser.getVersion", nil, &version); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version.Product, "Chrome") {
		t.Errorf("Browser.getVersion product = %q", version.Product)
	}
	t.Logf("product: %s", version.Product)

	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
			URL      string `json:"url"`
		} `json:"targetInfos"`
	}
	if err := c.Call(ctx, "", "Target.getTargets", nil, &targets); err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			pages = append(pages, ti.TargetID)
		}
	}
	if len(pages) != 1 {
		t.Fatalf("page targets: %+v; want exactly one", targets.TargetInfos)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": pages[0], "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	var eval struct {
		Result struct {
			Value []int `json:"value"`
		} `json:"result"`
	}
	params := map[string]any{"expression": "[window.innerWidth, window.innerHeight]", "returnByValue": true}
	if err := c.Call(ctx, attached.SessionID, "Runtime.evaluate", params, &eval); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(eval.Result.Value, []int{vp.Width, vp.Height}); diff != "" {
		t.Errorf("inner size (-got +want):\n%s", diff)
	}

	// Concurrent and repeated Close calls all wait for the one stop.
	start = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Close(t.Context()) })
	}
	wg.Wait()
	t.Logf("close: %v", time.Since(start))
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
	assertGone(t, b, singleton)
	chrometest.AssertNoLeaks(t, l.RunDir())
}

func TestCrash(t *testing.T) {
	l := chrometest.RealLauncher(t)
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "crash"})
	singleton := singletonDir(t, b)
	start := time.Now()
	if err := syscall.Kill(b.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Exited():
		t.Logf("SIGKILL → Exited: %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Exited not closed 5s after SIGKILL")
	}
	if err := b.WaitReady(t.Context()); !errors.Is(err, chrome.ErrExited) {
		t.Errorf("WaitReady after crash = %v; want ErrExited", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
	chrometest.AssertNoLeaks(t, l.RunDir())
}

// TestKill: Kill takes the browser's process group down at once, without the graceful
// stop, and Close afterwards still removes everything (a fenced node's browsers).
func TestKill(t *testing.T) {
	l := chrometest.RealLauncher(t)
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "kill"})
	singleton := singletonDir(t, b)
	k, ok := b.(bb.Killer)
	if !ok {
		t.Fatalf("%T is not a bb.Killer", b)
	}
	start := time.Now()
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kill: %v", time.Since(start))
	select {
	case <-b.Exited():
	default:
		t.Fatal("Exited not closed when Kill returned")
	}
	for _, p := range chrometest.Processes(t, l.RunDir()) { // zombies have no command line: dead
		t.Errorf("process still running after Kill: %s", p)
	}
	if err := k.Kill(); err != nil {
		t.Errorf("second Kill = %v; want nil", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
	chrometest.AssertNoLeaks(t, l.RunDir())
}

func TestLaunchContextCancel(t *testing.T) {
	l := chrometest.RealLauncher(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := l.Launch(ctx, bb.LaunchOptions{SessionID: "owned"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	singleton := singletonDir(t, b)
	cancel()
	select {
	case <-b.Exited():
	case <-time.After(closeTimeout):
		t.Fatal("cancelling the launch context did not stop the browser")
	}
	if err := b.Close(t.Context()); err != nil { // waits for the ctx-triggered Close
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
}

// TestLongRunDir checks that a run dir too long for a socket path works, as root and
// not: inside the sandbox Chromium's TMPDIR is /tmp (the browser's own tmp dir), so its
// singleton socket path stays short whatever the run dir, and Close removes it.
func TestLongRunDir(t *testing.T) {
	path := chrometest.Chrome(t)
	base := t.TempDir()
	// Searchable by others, so that as root too the browsers' dirs stay in the run dir
	// itself rather than under the sandbox root (sandbox.go, runDirFor).
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	runDir := filepath.Join(base, strings.Repeat("d", 80))
	l := chrometest.New(t, chrome.Config{Path: path, RunDir: runDir})
	if l.RunDir() != runDir {
		t.Fatalf("run dir %s moved to %s; the test needs %s searchable by others", runDir, l.RunDir(), os.TempDir())
	}
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "long"})
	// A Unix socket path has room for 107 bytes.
	if n := len(filepath.Join(b.Dir(), "tmp", "org.chromium.Chromium.XXXXXX", "SingletonSocket")); n <= 107 {
		t.Fatalf("singleton socket path of %d bytes outside the sandbox; the test needs a longer run dir", n)
	}
	singleton := singletonDir(t, b) // its link points into the sandbox's /tmp
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
	chrometest.AssertNoLeaks(t, runDir)
}

func TestReap(t *testing.T) {
	path := chrometest.Chrome(t)
	other := chrometest.Start(t, bb.LaunchOptions{}) // another run dir: must survive
	runDir := t.TempDir()
	var ls []*chrome.Launcher
	for range 2 {
		l := chrometest.New(t, chrome.Config{Path: path, RunDir: runDir})
		ls = append(ls, l)
	}
	forgotten := launchReady(t, ls[0], bb.LaunchOptions{SessionID: "forgotten"})
	singleton := singletonDir(t, forgotten)
	runDir = ls[1].RunDir() // as root, the browsers' own copy of it (sandbox.go)
	if err := os.WriteFile(filepath.Join(runDir, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	killed, err := ls[1].Reap(t.Context())
	if err != nil || killed != 1 {
		t.Fatalf("Reap() = %d, %v; want 1, nil", killed, err)
	}
	select {
	case <-forgotten.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("reaped browser did not exit")
	}
	assertGone(t, forgotten, singleton)
	chrometest.AssertNoLeaks(t, runDir)
	select {
	case <-other.Exited():
		t.Fatal("Reap killed a browser of another run dir")
	default:
	}
	if killed, err := ls[1].Reap(t.Context()); err != nil || killed != 0 {
		t.Errorf("second Reap() = %d, %v; want 0, nil", killed, err)
	}
}

func TestLaunchBadBinary(t *testing.T) {
	dir := t.TempDir()
	// The browser's uid must reach the binary (bubblewrap binds its directory).
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "fake-chrome")
	body := "#!/bin/sh\necho 'FATAL: cannot start: boom' >&2\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	l := chrometest.New(t, chrome.Config{Path: script, RunDir: runDir})
	b, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "bad"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.WaitReady(t.Context())
	if !errors.Is(err, chrome.ErrExited) || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("WaitReady() = %v; want ErrExited with the exit status and stderr", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	chrometest.AssertNoLeaks(t, l.RunDir())

	// A missing binary fails at New, a directory at New, a non-ELF executable at start.
	for _, p := range []string{filepath.Join(dir, "missing"), dir} {
		if _, err := chrome.New(chrome.Config{Path: p, RunDir: runDir}); err == nil {
			t.Errorf("New(Path: %q): no error", p)
		}
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01not an executable"), 0o755); err != nil {
		t.Fatal(err)
	}
	l = chrometest.New(t, chrome.Config{Path: garbage, RunDir: runDir})
	// Chromium is started by the sandbox's init: the exec error comes as its exit.
	b, err = l.Launch(context.Background(), bb.LaunchOptions{SessionID: "garbage"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReady(t.Context()); !errors.Is(err, chrome.ErrExited) || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("WaitReady() of a garbage binary = %v; want ErrExited with exec format error", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	chrometest.AssertNoLeaks(t, l.RunDir())
}

// BenchmarkLaunch measures spawn → ready (DevTools URL known and a page target listed).
// Run it with -benchtime=10x: every iteration starts and stops a real browser.
func BenchmarkLaunch(b *testing.B) {
	l := chrometest.RealLauncher(b)
	var ready []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		br, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "bench" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := br.WaitReady(b.Context()); err != nil {
			b.Fatal(err)
		}
		ready = append(ready, time.Since(start))
		if err := br.Close(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(ready)
	b.ReportMetric(float64(ready[len(ready)/2].Microseconds())/1000, "ms-ready-median")
	b.ReportMetric(float64(ready[0].Microseconds())/1000, "ms-ready-min")
	b.ReportMetric(float64(ready[len(ready)-1].Microseconds())/1000, "ms-ready-max")
}
