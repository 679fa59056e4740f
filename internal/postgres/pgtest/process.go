package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dirPrefix names the temp dirs of private clusters, which removeStale looks through.
const dirPrefix = "browserd-pgtest-"

// ownerFile, in a cluster's directory, names the test process that owns the cluster:
// "pid starttime" (the start time tells a reused pid from the owner).
const ownerFile = "owner"

// server is a running postgres, a child of this process in a process group of its own.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once postgres has exited and been waited for
}

// startServer starts postgres on c's data directory and port, logging to c.dir/log,
// and waits until it takes connections. Not daemonized: it dies with this process
// (Pdeathsig), so a killed test run leaves no PostgreSQL behind.
func (c *Cluster) startServer() (*server, error) {
	logf, err := os.OpenFile(filepath.Join(c.dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data(), "-p", strconv.Itoa(c.port))
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=" + c.dir}
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Setpgid: the postmaster and its backends are one group, which stop kills whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() { // ends when postgres exits; stop waits for it (s.exited)
		// Pdeathsig fires when the thread that started the child ends, which is not only
		// at the process's death (go.dev/issue/27505): this goroutine holds that thread
		// until postgres has exited.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(s.exited)
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // its exit status says nothing a test needs
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.waitReady(c.data(), time.Minute); err != nil {
		_ = s.stop(syscall.SIGKILL, 10*time.Second) // the error above says more
		return nil, err
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// waitReady waits until postmaster.pid says this server is ready, as pg_ctl -w does.
func (s *server) waitReady(data string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return errors.New("postgres exited during startup")
		default:
		}
		if pid, status := postmasterStatus(data); pid == s.pid() && status == "ready" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres is not ready after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig to the postmaster and waits up to timeout for it to exit; then
// SIGKILL for the whole group. It returns once no process of the group runs.
func (s *server) stop(sig syscall.Signal, timeout time.Duration) error {
	pid := s.pid()
	var err error
	_ = syscall.Kill(pid, sig) // ESRCH: it has exited already
	select {
	case <-s.exited:
	case <-time.After(timeout):
		err = fmt.Errorf("postgres (pid %d) did not exit within %s of %s; killed", pid, timeout, sig)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
	}
	if !waitGroupGone(pid, 5*time.Second) {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // backends that missed their postmaster's death
		waitGroupGone(pid, 5*time.Second)
	}
	return err
}

// postmasterStatus reads data/postmaster.pid: the postmaster's pid (line 1) and its
// status (line 8: starting, ready, stopping).
func postmasterStatus(data string) (pid int, status string) {
	lines := postmasterLines(data)
	if len(lines) < 8 {
		return 0, ""
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	return pid, strings.TrimSpace(lines[7])
}

func postmasterLines(data string) []string {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// writeOwner records this process as the owner of the cluster in dir. The file is
// renamed into place, so that removeStale never reads half of it.
func writeOwner(dir string) error {
	st, ok := procStat(os.Getpid())
	if !ok {
		return errors.New("pgtest: cannot read /proc/self/stat")
	}
	tmp := filepath.Join(dir, ownerFile+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", os.Getpid(), st.start), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ownerFile))
}

// removeStale removes the clusters under root whose owner has died: their postmaster
// (if it still runs) is killed with its group, the shared memory segment it leaves is
// removed, and so is the directory. A directory without an owner file is left alone:
// it is being made, or not this code's to judge.
func removeStale(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, dirPrefix+"*")) // the pattern is well-formed
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		var pid int
		var start uint64
		if _, err := fmt.Sscan(string(b), &pid, &start); err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.state != "Z" && st.start == start {
			continue // the owner runs
		}
		data := filepath.Join(dir, "data")
		lines := postmasterLines(data)
		if len(lines) > 0 {
			pm, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
			if pm > 0 && postmasterOf(pm, data) {
				_ = syscall.Kill(-pm, syscall.SIGKILL) // a group leader: started with Setpgid
				waitGroupGone(pm, 5*time.Second)
			}
		}
		if len(lines) >= 7 {
			removeSharedMemory(lines[6])
		}
		_ = os.RemoveAll(dir) // another test process may be removing it too
	}
}

// postmasterOf reports whether pid is a postgres serving the data directory data.
func postmasterOf(pid int, data string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 2 && filepath.Base(args[0]) == "postgres" && args[1] == "-D" && args[2] == data
}

// removeSharedMemory removes the System V segment that line 7 of postmaster.pid
// names ("key shmid"), which a killed postmaster leaves, if nothing is attached.
func removeSharedMemory(line string) {
	var key, id int64
	if _, err := fmt.Sscan(line, &key, &id); err != nil || id <= 0 {
		return
	}
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return
	}
	for _, row := range strings.Split(string(b), "\n")[1:] {
		// key shmid perms size cpid lpid nattch …
		f := strings.Fields(row)
		if len(f) < 7 || f[0] != strconv.FormatInt(key, 10) || f[1] != strconv.FormatInt(id, 10) || f[6] != "0" {
			continue
		}
		const ipcRMID = 0
		_, _, _ = syscall.Syscall(syscall.SYS_SHMCTL, uintptr(id), ipcRMID, 0) // best effort
	}
}

// stat is what pgtest reads of /proc/PID/stat.
type stat struct {
	state string // R, S, Z, …
	pgrp  int
	start uint64 // clock ticks after boot
}

// procStat reads /proc/pid/stat; ok is false when there is no such process.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	// pid (comm) state ppid pgrp … starttime is field 22; comm may hold spaces and ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return stat{}, false
	}
	pgrp, _ := strconv.Atoi(f[2])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return stat{state: f[0], pgrp: pgrp, start: start}, true
}

// groupAlive reports whether a process of group pgid runs (zombies do not count:
// a container's init may never reap the orphans of a killed test).
func groupAlive(pgid int) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*") // the pattern is well-formed
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.pgrp == pgid && st.state != "Z" {
			return true
		}
	}
	return false
}

// waitGroupGone waits up to timeout until no process of group pgid runs.
func waitGroupGone(pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
