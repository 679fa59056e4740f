package chrome

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Reap kills the browsers an earlier run left in RunDir (after a crash or kill -9 of the
// server) and removes every entry of RunDir. A browser is recognised by a process whose
// command line has --user-data-dir inside RunDir; its whole process group is killed.
// Browsers of other run dirs are never touched. killed counts the process groups. Call
// Reap before the first Launch: it would kill this Launcher's browsers too.
func (l *Launcher) Reap(ctx context.Context) (killed int, err error) {
	killed, removed, err := reapDir(ctx, l.runDir)
	if killed > 0 || removed > 0 {
		l.log.Info("chrome reaped", "killed", killed, "removed", removed)
	}
	return killed, err
}

// ReapDir does what Reap does for any directory of browser profiles: it kills every
// process group with a process whose --user-data-dir (or crashpad --database) lies
// inside dir and removes dir's entries. The bench uses it for bare Chromium.
func ReapDir(ctx context.Context, dir string) (killed int, err error) {
	killed, _, err = reapDir(ctx, dir)
	return killed, err
}

func reapDir(ctx context.Context, runDir string) (killed, removed int, err error) {
	groups, err := findGroups(runDir)
	if err != nil {
		return 0, 0, fmt.Errorf("reap chrome: %w", err)
	}
	self := syscall.Getpgrp()
	var errs []error
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return killed, 0, fmt.Errorf("reap chrome: %w", err)
		}
		if g.pgid == self || g.pgid <= 1 {
			continue // never our own group, nor init's, whatever its command line says
		}
		if err := killGroup(g.pgid, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		if g.browser {
			killed++
		}
	}
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		entries, err = nil, nil
	} else if err != nil {
		errs = append(errs, err)
	}
	for _, e := range entries {
		p := filepath.Join(runDir, e.Name())
		if err := removeSingleton(filepath.Join(p, "profile"), p); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return killed, len(entries), fmt.Errorf("reap chrome in %s: %w", runDir, err)
	}
	return killed, len(entries), nil
}

// findGroups returns the process groups of the live processes whose --user-data-dir or
// --database (the crashpad handler, which runs in a session of its own) lies inside
// runDir.
func findGroups(runDir string) ([]group, error) {
	pids, err := procPIDs()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(runDir) + string(filepath.Separator)
	index := map[int]int{} // pgid → index in groups
	var groups []group
	for _, pid := range pids {
		udd, db := procDirs(pid)
		isBrowser := inside(udd, prefix)
		if !isBrowser && !inside(db, prefix) {
			continue
		}
		st, ok := procStat(pid)
		if !ok || st.state == 'Z' {
			continue
		}
		i, ok := index[st.pgrp]
		if !ok {
			i = len(groups)
			index[st.pgrp] = i
			groups = append(groups, group{pgid: st.pgrp})
		}
		groups[i].browser = groups[i].browser || isBrowser
	}
	return groups, nil
}

// group is a process group found by findGroups.
type group struct {
	pgid    int
	browser bool // has a process with a --user-data-dir (else only crashpad)
}

// procPIDs lists the numeric entries of /proc.
func procPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procDirs returns the values of pid's --user-data-dir and --database flags, or "".
func procDirs(pid int) (udd, db string) {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", "" // gone, or not ours to read
	}
	for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
		if v, ok := bytes.CutPrefix(arg, []byte("--user-data-dir=")); ok {
			udd = string(v)
		} else if v, ok := bytes.CutPrefix(arg, []byte("--database=")); ok {
			db = string(v)
		}
	}
	return udd, db
}

// inside reports whether dir lies strictly inside prefix (which ends in "/").
func inside(dir, prefix string) bool {
	if dir == "" {
		return false
	}
	d := filepath.Clean(dir) + string(filepath.Separator)
	return len(d) > len(prefix) && strings.HasPrefix(d, prefix)
}

// stat is the part of /proc/<pid>/stat this package needs.
type stat struct {
	state byte
	pgrp  int
}

// procStat reads pid's state and process group.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return stat{}, false
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return stat{}, false
	}
	return stat{state: f[0][0], pgrp: pgrp}, true
}

// groupAlive reports whether process group pgid has a process that is not a zombie.
// Zombies count as gone: they hold no resources, and whoever inherited them reaps them.
func groupAlive(pgid int) bool {
	pids, err := procPIDs()
	if err != nil {
		return true // cannot tell; killGroup retries until its deadline
	}
	for _, pid := range pids {
		if st, ok := procStat(pid); ok && st.pgrp == pgid && st.state != 'Z' {
			return true
		}
	}
	return false
}
