package pgtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes TestKilledOwner the child that starts a cluster and waits to be killed.
const childEnv = "BROWSERD_PGTEST_CHILD"

// TestKilledOwner starts a private cluster in a child test process and kills the child
// with SIGKILL, as a timed-out or interrupted test run is: its postgres (the whole
// process group) must be gone within seconds, and the next StartPrivate must remove the
// directory the dead child left.
func TestKilledOwner(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		c := StartPrivate(t)
		fmt.Printf("pgtest-child %d %s\n", c.PID(), c.dir)
		time.Sleep(10 * time.Minute) // until the parent kills this process
		return
	}
	if Bin() == "" {
		StartPrivate(t) // skips, or fails with BROWSERD_REQUIRE_POSTGRES=1
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledOwner$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // on an early Fatal
	lines := make(chan string)
	go func() { // ends at the child's exit (EOF on its stdout)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var pid int
	var dir string
	timeout := time.After(2 * time.Minute)
	for pid == 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("the child exited without starting a cluster:\n%s", stderr.String())
			}
			if rest, found := strings.CutPrefix(line, "pgtest-child "); found {
				if _, err := fmt.Sscan(rest, &pid, &dir); err != nil || pid <= 0 {
					t.Fatalf("child said %q", line)
				}
			}
		case <-timeout:
			t.Fatalf("the child started no cluster in 2 minutes:\n%s", stderr.String())
		}
	}
	go func() { // drains the rest of the child's output; ends at its exit
		for range lines {
		}
	}()
	if !groupAlive(pid) {
		t.Fatalf("the child's postgres (pid %d) does not run", pid)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed"
	if !waitGroupGone(pid, 10*time.Second) {
		t.Errorf("postgres (process group %d) still runs 10 s after its test process was killed", pid)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed child's cluster directory is already gone before the next start: %v", err)
	}

	StartPrivate(t)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the next StartPrivate left the dead child's cluster directory %s (stat: %v)", dir, err)
	}
}
