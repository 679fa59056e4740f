package chrome

import (
	"os"
	"strconv"
	"strings"
)

// ParseListeners returns the ports of the 127.0.0.1 TCP sockets in LISTEN state
// (st 0A) of a /proc/net/tcp table whose inode is in inodes.
func ParseListeners(table []byte, inodes map[string]bool) []string {
	var ports []string
	for line := range strings.SplitSeq(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		if hexPort, ok := strings.CutPrefix(f[1], "0100007F:"); ok {
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, strconv.FormatUint(port, 10))
			}
		}
	}
	return ports
}

// OwnLoopbackPorts returns the 127.0.0.1 TCP ports this process listens on: the API,
// and the DevTools forwarders of the browsers it runs (the bench finds a session's
// forwarder among them; the security tests check what a browser could reach).
func OwnLoopbackPorts() ([]string, error) {
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
	return ParseListeners(b, inodes), nil
}
