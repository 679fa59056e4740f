package chrome_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// tree returns the live processes descending from pid (pid included), found through
// the parents in /proc: every process of a browser, the crashpad handler included.
func tree(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[0] != "Z" {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	for p := range parent {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// threadPriorities returns "pid/tid" → (nice, policy) for every thread of pids.
func threadPriorities(t *testing.T, pids []int) map[string][2]int {
	t.Helper()
	out := map[string][2]int{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/task/"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue // exited meanwhile
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(dir + task.Name() + "/stat")
			if err != nil {
				continue
			}
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(f) < 39 {
				t.Fatalf("short stat of %d/%s", pid, task.Name())
			}
			nice, err1 := strconv.Atoi(f[16])   // field 19
			policy, err2 := strconv.Atoi(f[38]) // field 41
			if err1 != nil || err2 != nil {
				t.Fatalf("stat of %d/%s: nice %q policy %q", pid, task.Name(), f[16], f[38])
			}
			// The kernel's own view of the policy, as a cross-check of the stat field.
			tid, _ := strconv.Atoi(task.Name())
			if attr, err := unix.SchedGetAttr(tid, 0); err == nil && int(attr.Policy) != policy {
				t.Errorf("thread %d: stat policy %d, sched_getattr %d", tid, policy, attr.Policy)
			}
			out[strconv.Itoa(pid)+"/"+task.Name()] = [2]int{nice, policy}
		}
	}
	return out
}

// checkPriorities fails unless every thread of pids has niceness nice and policy.
func checkPriorities(t *testing.T, what string, pids []int, nice, policy int) {
	t.Helper()
	prios := threadPriorities(t, pids)
	bad := 0
	for thread, p := range prios {
		if p != [2]int{nice, policy} {
			bad++
			if bad <= 5 {
				t.Errorf("%s: thread %s has nice %d policy %d; want %d %d", what, thread, p[0], p[1], nice, policy)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d threads at the wrong priority", what, bad, len(prios))
	}
	t.Logf("%s: %d processes, %d threads checked", what, len(pids), len(prios))
}

// renderers returns the renderer processes among pids.
func renderers(pids []int) []int {
	var out []int
	for _, pid := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(cmdline), "--type=renderer") {
			out = append(out, pid)
		}
	}
	return out
}

// TestBackground launches two browsers in the background, raises one, opens a page in
// a new tab (a new renderer, forked by the raised zygote) and checks every thread of
// both process trees: the raised one at Config.Nice and SCHED_OTHER, the other left at
// niceness 19 and SCHED_IDLE.
func TestBackground(t *testing.T) {
	const nice = 7
	path := chrometest.Chrome(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := chrometest.New(t, chrome.Config{Path: path, RunDir: t.TempDir(), Nice: nice, Logger: log})
	if !l.CanBackground() {
		if os.Geteuid() == 0 {
			t.Fatal("CanBackground false as root")
		}
		t.Skip("no CAP_SYS_NICE and RLIMIT_NICE too low: background launches are ignored")
	}
	bg := launchReady(t, l, bb.LaunchOptions{SessionID: "bg", Background: true})
	other := launchReady(t, l, bb.LaunchOptions{SessionID: "other", Background: true})
	normal := launchReady(t, l, bb.LaunchOptions{SessionID: "normal"})
	checkPriorities(t, "background", tree(t, bg.PID()), 19, unix.SCHED_IDLE)
	checkPriorities(t, "normal", tree(t, normal.PID()), nice, unix.SCHED_NORMAL)
	if err := normal.(bb.Foregrounder).Foreground(); err != nil {
		t.Errorf("Foreground of a normal browser: %v", err)
	}

	start := time.Now()
	if err := bg.(bb.Foregrounder).Foreground(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Foreground took %v", time.Since(start))
	checkPriorities(t, "foregrounded", tree(t, bg.PID()), nice, unix.SCHED_NORMAL)

	// A new tab with a page of another site: a new renderer process.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<title>ok</title><p>hello")
	}))
	defer srv.Close()
	bg.SetEgress(chrometest.Egress(t))
	before := renderers(tree(t, bg.PID()))
	c := dialCDP(t, bg.DevToolsURL())
	ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
	defer cancel()
	if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": srv.URL}, nil); err != nil {
		t.Fatal(err)
	}
	var added []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(added) == 0; {
		for _, r := range renderers(tree(t, bg.PID())) {
			if !slices.Contains(before, r) {
				added = append(added, r)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(added) == 0 {
		t.Fatalf("no new renderer after Target.createTarget (renderers before: %v)", before)
	}
	time.Sleep(200 * time.Millisecond) // its threads start
	checkPriorities(t, "new renderer", added, nice, unix.SCHED_NORMAL)
	checkPriorities(t, "foregrounded, after a new tab", tree(t, bg.PID()), nice, unix.SCHED_NORMAL)
	checkPriorities(t, "other background browser", tree(t, other.PID()), 19, unix.SCHED_IDLE)

	for _, b := range []bb.Browser{bg, other, normal} {
		singleton := singletonDir(t, b)
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		assertGone(t, b, singleton)
	}
	chrometest.AssertNoLeaks(t, l.RunDir())
}

// TestBackgroundRaceWithLaunch raises a background browser while it is still starting
// (as a pool does when a session takes a browser that is not ready yet): processes
// forked during the walk must end at normal priority too.
func TestBackgroundRaceWithLaunch(t *testing.T) {
	const nice = 5
	l := chrometest.New(t, chrome.Config{Path: chrometest.Chrome(t), RunDir: t.TempDir(), Nice: nice})
	if !l.CanBackground() {
		t.Skip("background launches are ignored here")
	}
	for i := range 3 {
		b, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "race" + strconv.Itoa(i), Background: true})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 40 * time.Millisecond) // at different stages of the start
		if err := b.(bb.Foregrounder).Foreground(); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), closeTimeout)
		err = b.WaitReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		checkPriorities(t, "raised while starting", tree(t, b.PID()), nice, unix.SCHED_NORMAL)
		singleton := singletonDir(t, b)
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		assertGone(t, b, singleton)
	}
	chrometest.AssertNoLeaks(t, l.RunDir())
}
