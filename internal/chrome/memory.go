package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Memory returns the proportional set size (PSS) of the browser's whole process group,
// in bytes: shared pages are split between the processes that map them, so the sum is
// what the browser costs the machine. It implements browserd.MemoryReporter.
func (b *Browser) Memory() (int64, error) { return GroupPSS(b.pid) }

// GroupPSS sums the PSS of every process in process group pgid.
func GroupPSS(pgid int) (int64, error) {
	pids, err := procPIDs()
	if err != nil {
		return 0, err
	}
	var total int64
	found := false
	for _, pid := range pids {
		if st, ok := procStat(pid); !ok || st.pgrp != pgid {
			continue
		}
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			continue // exited meanwhile, or a zombie
		}
		pss, err := parsePSS(data)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		total += pss
		found = true
	}
	if !found {
		return 0, fmt.Errorf("process group %d: no process found", pgid)
	}
	return total, nil
}

// parsePSS returns the "Pss:" line of /proc/<pid>/smaps_rollup in bytes.
func parsePSS(data []byte) (int64, error) {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("Pss:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("malformed Pss line %q", line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("malformed Pss value %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, errors.New("no Pss line")
}
