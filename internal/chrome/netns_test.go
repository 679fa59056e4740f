package chrome_test

import (
	"strconv"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestLaunchNetworkFinal checks a real browser's network namespace once it is ready:
// no IPv6 address but loopback's, none tentative, so nothing the kernel would still
// change on its own (a link-local address finishing duplicate address detection 1–2 s
// after the link came up). Chromium sees such a change and fails whatever connection
// it is setting up with net::ERR_NETWORK_CHANGED: a fresh session's first navigation
// did (docs/PERFORMANCE.md, "ERR_NETWORK_CHANGED"). /proc/PID/net shows the namespace
// of PID to root and to an unprivileged server alike; TestOnlineLinkFinal checks the
// links too.
func TestLaunchNetworkFinal(t *testing.T) {
	b := launchReady(t, chrometest.RealLauncher(t), bb.LaunchOptions{SessionID: "netns"})
	pid := strconv.Itoa(chromiumMain(t, b))
	// Lines "ADDRESS IFINDEX PREFIXLEN SCOPE FLAGS NAME", in hex; FLAGS are IFA_F_*.
	for line := range strings.SplitSeq(strings.TrimSpace(readFile(t, "/proc/"+pid+"/net/if_inet6")), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("if_inet6 line %q", line)
		}
		flags, err := strconv.ParseUint(f[4], 16, 32)
		if err != nil {
			t.Fatalf("if_inet6 line %q: %v", line, err)
		}
		if f[5] != "lo" {
			t.Errorf("IPv6 address %s on %s (flags %#x)", f[0], f[5], flags)
		}
		if flags&0x40 != 0 { // IFA_F_TENTATIVE
			t.Errorf("address %s of %s is tentative", f[0], f[5])
		}
	}
	// The link Chromium needs to count itself online is there, with its address.
	if routes := readFile(t, "/proc/"+pid+"/net/fib_trie"); !strings.Contains(routes, "192.0.2.1") {
		t.Errorf("no 192.0.2.1 in the browser's namespace:\n%s", routes)
	}
}
