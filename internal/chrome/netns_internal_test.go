package chrome

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// inNewNetNS runs f on a thread of its own in a new network namespace. The thread
// never serves another goroutine: it stays locked and ends with f.
func inNewNetNS(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes away with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// namespaceProblems lists what in the calling thread's network namespace is not final,
// that is, what the kernel would still change on its own once Chromium watches it
// (onlineLink): a link other than loopback that is not operationally up or would get
// IPv6 addresses, an address still tentative (duplicate address detection under way),
// an IPv6 address on such a link; and it checks that eth0 has its one address.
func namespaceProblems() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var problems []string
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		if a.OperState != netlink.OperUp || a.Flags&net.FlagRunning == 0 {
			problems = append(problems, fmt.Sprintf("link %s is not up yet (state %v, flags %v)", a.Name, a.OperState, a.Flags))
		}
		// The namespace's own sysctl, read by this thread (it is in the namespace).
		mode, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + a.Name + "/addr_gen_mode")
		switch {
		case errors.Is(err, os.ErrNotExist): // no IPv6 in this kernel
		case err != nil:
			return nil, err
		case strings.TrimSpace(string(mode)) != fmt.Sprint(addrGenModeNone):
			problems = append(problems, fmt.Sprintf("link %s gets IPv6 addresses of its own (addr_gen_mode %s)", a.Name, strings.TrimSpace(string(mode))))
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	eth0 := false
	for _, ad := range addrs {
		name := names[ad.LinkIndex]
		if ad.Flags&unix.IFA_F_TENTATIVE != 0 {
			problems = append(problems, fmt.Sprintf("address %s of %s is tentative", ad.IPNet, name))
		}
		if ad.IP.To4() == nil && name != "lo" {
			problems = append(problems, fmt.Sprintf("IPv6 address %s on %s", ad.IPNet, name))
		}
		if name == "eth0" && ad.IPNet.String() == "192.0.2.1/32" {
			eth0 = true
		}
	}
	if !eth0 {
		problems = append(problems, "eth0 lacks 192.0.2.1/32")
	}
	return problems, nil
}

// TestOnlineLinkFinal sets up a new network namespace as a sandbox's init does and
// checks that it is final as soon as onlineLink returns: nothing left for the kernel to
// change once Chromium starts watching (no tentative address, no link-local address to
// come, links up). Such a late change made a fresh session's first navigation fail
// with net::ERR_NETWORK_CHANGED (docs/PERFORMANCE.md).
func TestOnlineLinkFinal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a new network namespace needs root here; TestLaunchNetworkFinal checks a sandbox's")
	}
	err := inNewNetNS(func() error {
		if err := onlineLink(); err != nil {
			return err
		}
		problems, err := namespaceProblems()
		if err != nil {
			return err
		}
		for _, p := range problems {
			t.Error(p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
