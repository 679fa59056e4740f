package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	bb "github.com/browserd/browserd"
)

// backgroundNice is the niceness of a browser launched with LaunchOptions.Background:
// the lowest priority there is, below every live session's browser (Config.Nice).
const backgroundNice = 19

// maxForegroundPasses bounds Foreground's walks over /proc: each pass raises what the
// one before it did not see (threads and processes started meanwhile); two or three
// passes are the rule even while Chromium starts renderers.
const maxForegroundPasses = 20

var _ bb.Foregrounder = (*Browser)(nil)

// backgroundCommand returns what goes before bubblewrap to start a background browser:
// chrt(1) for SCHED_IDLE when idle is set and chrt exists, and nice(1) for
// backgroundNice. Missing programs are left out with a warning.
func backgroundCommand(idle bool, log *slog.Logger) []string {
	var argv []string
	if idle {
		if chrt, err := exec.LookPath("chrt"); err == nil {
			argv = append(argv, chrt, "--idle", "0")
		} else {
			log.Warn("chrt(1) not found; background browsers run without SCHED_IDLE", "err", err)
		}
	}
	return append(argv, niceCommand(backgroundNice, log)...)
}

// canRaise reports whether this process can raise a browser from backgroundNice and
// SCHED_IDLE back to niceness nice and SCHED_OTHER: with CAP_SYS_NICE (a root server,
// unless its container dropped it), or when RLIMIT_NICE allows niceness nice (which the
// browsers inherit: the kernel checks the target's limit). Browsers run as this
// process's uid, or as root's own uids, so ownership is never what stops it.
func canRaise(nice int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil && data[0].Effective&(1<<unix.CAP_SYS_NICE) != 0 {
		return true
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NICE, &lim); err != nil {
		return false
	}
	// RLIMIT_NICE r allows niceness down to 20 - r.
	return lim.Cur == unix.RLIM_INFINITY || lim.Cur >= uint64(20-nice)
}

// CanBackground reports whether Background launches are honoured: the browser starts
// at niceness 19 (and SCHED_IDLE where chrt(1) exists) and Foreground can raise it to
// Config.Nice later, which needs CAP_SYS_NICE or a high enough RLIMIT_NICE. When it
// cannot, Launch ignores LaunchOptions.Background, so that no browser a pool hands out
// is stuck at the lowest priority.
func (l *Launcher) CanBackground() bool { return l.background != nil }

// Foreground raises every thread of every process of the browser to the priority a
// browser launched without Background has: niceness Config.Nice and SCHED_OTHER. It
// implements bb.Foregrounder. The browser's processes are the descendants of its main
// process (bubblewrap, the init, Chromium, its zygotes, renderers, utilities and the
// crashpad handler, whose orphans the sandbox's own pid-1 reaps) and the members of
// its process group; nothing of another browser's. It raises the zygotes too, so
// renderers started later inherit the normal priority. Processes and threads started
// while it walks /proc are caught by walking again until a pass finds nothing left
// to raise. For a browser launched at normal priority it does nothing. Safe for
// concurrent use; after the first success it does nothing.
func (b *Browser) Foreground() error {
	b.fgMu.Lock()
	defer b.fgMu.Unlock()
	if !b.background {
		return nil
	}
	select {
	case <-b.exited:
		// Nothing left to raise, and the group id may not be this browser's any more.
		return nil
	default: // the main process is not reaped, so its pid and group stay this browser's
	}
	start, total, passes := time.Now(), 0, 0
	for {
		// While the launch's wrappers (chrt, nice) still run in the main process, a pass
		// may raise nothing and nice(1) lower the chain afterwards: wait until it has
		// exec'd past them (it then has its priority for good) before a quiet pass counts.
		wrapping := wrapperRuns(b.pid)
		raised, err := raiseTree(b.pid, b.nice)
		if err != nil {
			return fmt.Errorf("foreground chrome %d: %w", b.pid, err)
		}
		total += raised
		if raised == 0 && !wrapping {
			b.background = false
			b.log.Debug("chrome foregrounded", "threads", total, "passes", passes+1, "took", time.Since(start))
			return nil
		}
		if wrapping {
			if time.Since(start) > wrapperWait {
				return fmt.Errorf("foreground chrome %d: the launch wrappers still run after %s", b.pid, wrapperWait)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if passes++; passes >= maxForegroundPasses {
			return fmt.Errorf("foreground chrome %d: threads still at background priority after %d passes", b.pid, maxForegroundPasses)
		}
	}
}

// wrapperWait bounds how long Foreground waits for a starting browser's launch wrappers.
const wrapperWait = 10 * time.Second

// wrapperRuns reports whether process pid still runs one of the programs a background
// launch starts through (chrt, nice) before they exec the sandbox.
func wrapperRuns(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false // exited: nothing left to wait for
	}
	switch strings.TrimSpace(string(comm)) {
	case "chrt", "nice":
		return true
	}
	return false
}

// procInfo is what raiseTree reads of a process's stat.
type procInfo struct {
	ppid, pgrp int
}

// raiseTree gives every thread of root's process tree and process group (root is the
// group's id) that runs at background priority niceness nice and SCHED_OTHER, and
// returns how many it changed. Threads already at nice or above (Chromium sets some of
// its own threads lower) are left alone. It reads the stat of every process (there is
// no cheaper way to find a process's children on kernels without
// /proc/<pid>/task/<tid>/children) with one buffer and no sorting, and asks the kernel
// for each thread's priority directly: a pass over 260 processes and a browser's 100
// threads takes a few milliseconds.
func raiseTree(root, nice int) (raised int, err error) {
	d, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close() // read-only
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	procs := make(map[int]procInfo, len(names))
	children := map[int][]int{}
	buf := make([]byte, 1024) // a stat line is about 300 bytes; comm is at most 64
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		data, ok := readSmall("/proc/"+name+"/stat", buf)
		if !ok {
			continue // exited meanwhile
		}
		p, ok := parseParent(data)
		if !ok {
			continue
		}
		procs[pid] = p
		children[p.ppid] = append(children[p.ppid], pid)
	}
	// The tree from root, breadth first: parents (the zygotes) before their children.
	seen := map[int]bool{}
	var order []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		if _, ok := procs[pid]; !ok {
			continue
		}
		seen[pid] = true
		order = append(order, pid)
		queue = append(queue, children[pid]...)
	}
	// A process whose parent exited between two reads above is still in the group.
	for pid, p := range procs {
		if p.pgrp == root && !seen[pid] {
			seen[pid] = true
			order = append(order, pid)
		}
	}
	for _, pid := range order {
		n, err := raiseThreads(pid, nice)
		raised += n
		if err != nil {
			return raised, err
		}
	}
	return raised, nil
}

// readSmall reads a small file into buf with one read, as /proc files are generated.
func readSmall(path string, buf []byte) ([]byte, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd) // read-only
	if err != nil || n <= 0 {
		return nil, false
	}
	return buf[:n], true
}

// raiseThreads raises the threads of process pid that run at background priority.
func raiseThreads(pid, nice int) (raised int, err error) {
	d, err := os.Open("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return 0, nil // exited meanwhile
	}
	tasks, err := d.Readdirnames(-1)
	d.Close() // read-only
	if err != nil {
		return 0, nil // exited meanwhile
	}
	for _, name := range tasks {
		tid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited meanwhile
		}
		if !background(int(attr.Nice), attr.Policy, nice) {
			continue
		}
		attr = &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: int32(nice)}
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				continue // exited meanwhile
			}
			return raised, fmt.Errorf("raise thread %d of process %d: %w", tid, pid, err)
		}
		raised++
	}
	return raised, nil
}

// background reports whether a thread at niceness tn and policy runs at background
// priority, to be raised to niceness nice: SCHED_IDLE, or niceness backgroundNice
// above nice. A niceness between the two is Chromium's own choice for the thread.
func background(tn int, policy uint32, nice int) bool {
	return policy == unix.SCHED_IDLE || (tn > nice && tn >= backgroundNice)
}

// parseParent reads the parent (field 4) and process group (field 5) from a process's
// /proc stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseParent(data []byte) (procInfo, bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil || ppid < 0 || pgrp < 0 {
		return procInfo{}, false
	}
	return procInfo{ppid: ppid, pgrp: pgrp}, true
}
