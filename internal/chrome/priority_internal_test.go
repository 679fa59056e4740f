package chrome

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestThreadPriority reads this process's own threads, whose niceness and policy the
// kernel tells through getpriority and sched_getattr as well.
func TestThreadPriority(t *testing.T) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		data, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		nice, policy, ok := threadPriority(data)
		if !ok {
			t.Fatalf("threadPriority(%q) not ok", data)
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited meanwhile
		}
		if int(attr.Nice) != nice || attr.Policy != policy {
			t.Errorf("thread %d: stat says nice %d policy %d; sched_getattr %d %d", tid, nice, policy, attr.Nice, attr.Policy)
		}
	}
	for _, bad := range []string{"", "1 (x) S", "1 (a) b) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 x 1 0 0"} {
		if _, _, ok := threadPriority([]byte(bad)); ok {
			t.Errorf("threadPriority(%q) ok", bad)
		}
	}
	// comm with spaces and parentheses; nice 19, policy 5 (SCHED_IDLE).
	line := "42 (Chrome_ChildIOT) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 39 19 12 0 1234 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 5 0 0 0\n"
	if n, p, ok := threadPriority([]byte(line)); !ok || n != 19 || p != unix.SCHED_IDLE {
		t.Errorf("threadPriority = %d, %d, %v; want 19, 5, true", n, p, ok)
	}
}

// FuzzThreadPriority checks that any stat content is parsed without a panic and that
// what is accepted is a valid niceness.
func FuzzThreadPriority(f *testing.F) {
	if data, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("1 (a b) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 19 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _, ok := threadPriority(data)
		if ok && (n < -20 || n > 19) {
			t.Errorf("niceness %d accepted", n)
		}
	})
}
