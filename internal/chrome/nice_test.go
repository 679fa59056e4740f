package chrome_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestNice checks that Config.Nice reaches every process and thread of the browser,
// that the main process is Chromium itself (nice(1) exec'd it), and that it stops clean.
func TestNice(t *testing.T) {
	path := chrometest.Chrome(t)
	runDir := t.TempDir()
	for _, bad := range []int{-1, 20} {
		if _, err := chrome.New(chrome.Config{Path: path, RunDir: runDir, Nice: bad}); err == nil {
			t.Errorf("Nice %d accepted", bad)
		}
	}
	l := chrometest.New(t, chrome.Config{Path: path, RunDir: runDir, Nice: 7})
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "nice"})
	exe, err := os.Readlink("/proc/" + strconv.Itoa(b.PID()) + "/exe")
	if err != nil || filepath.Base(exe) == "nice" {
		t.Errorf("main process runs %q, %v; want Chromium", exe, err)
	}
	pids := group(t, b.PID())
	if len(pids) < 2 {
		t.Fatalf("process group has %d processes", len(pids))
	}
	// Chromium sets the niceness of its threads itself (its main thread to -8, others to
	// 0); without CAP_SYS_NICE (dropped for root) it cannot go below what it inherited.
	threads := 0
	for _, pid := range pids {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			continue // exited meanwhile
		}
		for _, task := range tasks {
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
			if err != nil {
				continue
			}
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(f) < 17 {
				t.Fatalf("short stat of %d/%s", pid, task.Name())
			}
			threads++
			nice, err := strconv.Atoi(f[16]) // field 19 of stat: nice
			if err != nil {
				t.Fatalf("stat of %d/%s: nice %q", pid, task.Name(), f[16])
			}
			if nice != 7 {
				t.Errorf("process %d thread %s has nice %d; want 7", pid, task.Name(), nice)
			}
		}
	}
	t.Logf("%d processes, %d threads at nice 7", len(pids), threads)
	singleton := singletonDir(t, b)
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
}
