package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ). Linux fixes it
// at 100 on every architecture browserd runs on; reading sysconf(_SC_CLK_TCK) would
// need cgo.
const clockTick = 10 * time.Millisecond

var _ bb.UsageReporter = (*Browser)(nil)

// Usage returns the CPU time and PSS of the browser's whole process group. It
// implements browserd.UsageReporter.
func (b *Browser) Usage() (bb.Usage, error) { return GroupUsage(b.pid) }

// GroupUsage measures every process in process group pgid in one pass over /proc: the
// sum of their user and system CPU time, their reaped children's included (so a
// renderer that exited still counts, once, in its parent's), and the sum of their PSS.
func GroupUsage(pgid int) (bb.Usage, error) {
	pids, err := procPIDs()
	if err != nil {
		return bb.Usage{}, err
	}
	var u bb.Usage
	found := false
	for _, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(data)
		if err != nil || st.pgrp != pgid || st.state == 'Z' {
			continue
		}
		smaps, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			continue // exited meanwhile
		}
		pss, err := parsePSS(smaps)
		if err != nil {
			return bb.Usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.CPU += time.Duration(st.ticks) * clockTick
		u.Memory += pss
		found = true
	}
	if !found {
		return bb.Usage{}, fmt.Errorf("process group %d: no process found", pgid)
	}
	return u, nil
}

// cpuStat is what GroupUsage needs from /proc/<pid>/stat.
type cpuStat struct {
	state byte
	pgrp  int
	ticks int64 // utime + stime + cutime + cstime, in clock ticks
}

// maxTicks bounds each CPU field: a century of CPU time, far beyond any real value, so
// that the sum cannot overflow.
const maxTicks = 100 * 365 * 24 * 3600 * int64(time.Second/clockTick)

// parseStat parses /proc/<pid>/stat: "pid (comm) state ppid pgrp … utime stime cutime
// cstime …" (proc(5)); comm may hold spaces and parentheses, so fields are counted
// from the last ')'.
func parseStat(data []byte) (cpuStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return cpuStat{}, errors.New("stat: no ')' after comm")
	}
	f := bytes.Fields(data[i+1:])
	// f[0] state, f[2] pgrp, f[11..14] utime stime cutime cstime.
	if len(f) < 15 || len(f[0]) != 1 {
		return cpuStat{}, fmt.Errorf("stat: %d fields after comm, want at least 15", len(f))
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return cpuStat{}, fmt.Errorf("stat: pgrp: %w", err)
	}
	st := cpuStat{state: f[0][0], pgrp: pgrp}
	for _, field := range f[11:15] {
		n, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil || n < 0 || n > maxTicks {
			return cpuStat{}, fmt.Errorf("stat: bad CPU time %q", field)
		}
		st.ticks += n
	}
	return st, nil
}
