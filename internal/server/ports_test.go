package server

import (
	"os"
	"strconv"
	"strings"
)

// ownLoopbackPorts returns the loopback TCP ports this process listens on (a copy of
// the bench's, internal/bench/bench_rtt.go, for security_test.go).
func ownLoopbackPorts() ([]string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
			if in, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(in, "]")] = true
			}
		}
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	var ports []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // LISTEN, ours
			continue
		}
		if hexPort, ok := strings.CutPrefix(f[1], "0100007F:"); ok {
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, strconv.FormatUint(port, 10))
			}
		}
	}
	return ports, nil
}
