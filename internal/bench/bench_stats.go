package bench

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchPercentile returns the q-quantile (nearest rank) of samples in unit; with fewer
// than 100 samples the 0.99 quantile is the largest.
func benchPercentile(samples []time.Duration, q float64, unit time.Duration) float64 {
	if len(samples) == 0 {
		return math.NaN()
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(0, min(i, len(s)-1))]) / float64(unit)
}

// benchMedian returns the median of vals (NaN when empty).
func benchMedian(vals []float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchMiB(b int64) float64 { return float64(b) / (1 << 20) }

// benchProc is what the bench reads of a process's /proc/<pid>/stat.
type benchProc struct{ pid, ppid, pgrp int }

type benchProcTable map[int]benchProc

// benchParseStat parses /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may
// hold spaces and parentheses, so the fields start after the last ')'.
func benchParseStat(data []byte) (benchProc, bool) {
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 1 || end < open {
		return benchProc{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	f := bytes.Fields(data[end+1:])
	if err != nil || len(f) < 3 || len(f[0]) != 1 || f[0][0] == 'Z' {
		return benchProc{}, false // a zombie has no memory left
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return benchProc{}, false
	}
	return benchProc{pid: pid, ppid: ppid, pgrp: pgrp}, true
}

// benchProcs reads every live process's parent and process group.
func benchProcs() benchProcTable {
	t := benchProcTable{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return t
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if p, ok := benchParseStat(data); ok {
			t[p.pid] = p
		}
	}
	return t
}

// descendants returns root and every process below it.
func (t benchProcTable) descendants(root int) map[int]bool {
	children := map[int][]int{}
	for _, p := range t {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	out := map[int]bool{root: true}
	for queue := []int{root}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			if !out[c] {
				out[c] = true
				queue = append(queue, c)
			}
		}
	}
	return out
}

// benchPSS sums the PSS (bytes) of the processes for which keep is true.
func benchPSS(t benchProcTable, keep func(benchProc) bool) int64 {
	var total int64
	for _, p := range t {
		if !keep(p) {
			continue
		}
		data, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/smaps_rollup")
		if err != nil {
			continue // exited meanwhile
		}
		total += benchKBField(data, "Pss:") << 10
	}
	return total
}

// benchKBField returns the value of a "Name:   123 kB" line, in kB (0 if absent).
func benchKBField(data []byte, name string) int64 {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	return 0
}

// benchMemAvailable returns MemAvailable in MiB.
func benchMemAvailable() float64 {
	data, _ := os.ReadFile("/proc/meminfo") // on error: 0, reported as such
	return float64(benchKBField(data, "MemAvailable:")) / 1024
}

func benchLoadAvg() string {
	data, _ := os.ReadFile("/proc/loadavg") // informative only
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchMachine describes where the bench ran.
type benchMachine struct {
	cpu, os, kernel, goVersion, chromePath, chromeVersion, commit, loadStart, loadEnd string
	cores                                                                             int
	ramGiB                                                                            float64
}

func benchMachineInfo(chromePath string) benchMachine {
	m := benchMachine{cores: runtime.NumCPU(), goVersion: runtime.Version(), chromePath: chromePath,
		loadStart: benchLoadAvg(), cpu: "?", os: "?", kernel: "?"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.ramGiB = float64(benchKBField(data, "MemTotal:")) / (1 << 20)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if out, err := exec.Command(chromePath, "--version").Output(); err == nil {
		m.chromeVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	return m
}

func (m benchMachine) summary() string {
	return strconv.Itoa(m.cores) + " cores, " + strconv.FormatFloat(m.ramGiB, 'f', 1, 64) + " GiB, kernel " +
		m.kernel + ", " + m.goVersion + ", " + m.chromeVersion + ", load " + m.loadStart
}
