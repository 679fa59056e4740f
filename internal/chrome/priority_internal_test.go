package chrome

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestParseParent reads this process's stat, whose parent and group the kernel tells
// through getppid and getpgrp too, and lines with awkward names.
func TestParseParent(t *testing.T) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getpid()) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := parseParent(data); !ok || p.ppid != os.Getppid() || p.pgrp != unix.Getpgrp() {
		t.Errorf("parseParent(own stat) = %+v, %v; want ppid %d pgrp %d", p, ok, os.Getppid(), unix.Getpgrp())
	}
	good := map[string]procInfo{
		"42 (Chrome_ChildIOT) (x)) S 7 9 9 0 -1": {ppid: 7, pgrp: 9},
		"1 (a b) R 0 1 1":                        {ppid: 0, pgrp: 1},
	}
	for line, want := range good {
		if p, ok := parseParent([]byte(line)); !ok || p != want {
			t.Errorf("parseParent(%q) = %+v, %v; want %+v", line, p, ok, want)
		}
	}
	for _, bad := range []string{"", "1 (x) S", "1 (x) S 2", "1 (x) SS 2 3", "1 (x) S a 3", "1 (x) S 2 -3", "1 x S 2 3"} {
		if p, ok := parseParent([]byte(bad)); ok {
			t.Errorf("parseParent(%q) = %+v, ok", bad, p)
		}
	}
}

// TestBackgroundPriority pins which thread priorities Foreground raises.
func TestBackgroundPriority(t *testing.T) {
	for _, c := range []struct {
		nice   int
		policy uint32
		target int
		want   bool
	}{
		{19, unix.SCHED_IDLE, 10, true},
		{19, unix.SCHED_NORMAL, 10, true},
		{10, unix.SCHED_IDLE, 10, true}, // SCHED_IDLE at any niceness
		{10, unix.SCHED_NORMAL, 10, false},
		{15, unix.SCHED_NORMAL, 10, false}, // Chromium's own choice
		{19, unix.SCHED_NORMAL, 19, false}, // Config.Nice 19: nothing to raise
		{0, unix.SCHED_NORMAL, 10, false},
	} {
		if got := background(c.nice, c.policy, c.target); got != c.want {
			t.Errorf("background(%d, %d, %d) = %v; want %v", c.nice, c.policy, c.target, got, c.want)
		}
	}
}

// FuzzParseParent checks that any stat content is parsed without a panic and that what
// is accepted has no negative id.
func FuzzParseParent(f *testing.F) {
	if data, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("42 (a) b) S 7 9 9 0 -1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, ok := parseParent(data); ok && (p.ppid < 0 || p.pgrp < 0) {
			t.Errorf("parseParent(%q) = %+v", data, p)
		}
	})
}
