package server

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0}}

func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	shift := uint(0)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = strings.TrimSpace(rest), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || (n > 0 && n > (1<<62)>>shift) {
		return 0, fmt.Errorf("not a size (e.g. 2GiB, 512MiB, 1073741824, -1): %q", v)
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// diskFree returns a function that measures the free and total bytes of the file
// systems of dirs and returns those of the fullest (bb.DiskConfig.Free).
func diskFree(dirs ...string) func() (free, total int64, err error) {
	return func() (free, total int64, err error) {
		free = -1
		for _, d := range dirs {
			var st syscall.Statfs_t
			if err := syscall.Statfs(d, &st); err != nil {
				return 0, 0, fmt.Errorf("statfs %s: %w", d, err)
			}
			f, t := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize
			if free < 0 || f < free {
				free, total = f, t
			}
		}
		return free, total, nil
	}
}
