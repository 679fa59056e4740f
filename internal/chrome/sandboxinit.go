package chrome

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// initEnv marks a process started as a sandbox's init (see SandboxInit).
const initEnv = "BROWSERD_SANDBOX_INIT"

// Inside a sandbox's own network namespace only its init and Chromium listen, so the
// ports are fixed: Chromium's DevTools, and the init's end of the session proxy.
const (
	sandboxDevToolsPort = 9222
	sandboxEgressPort   = 3128
)

// SandboxInit runs the init process of a browser sandbox and exits, when this process
// was started as one; otherwise it returns at once. A program that runs a Launcher must
// call it first thing in main (and a test binary that does, in TestMain): the Launcher
// starts its own executable inside the sandbox as Chromium's parent.
//
// The init relays between Chromium, which lives in a network namespace with nothing but
// loopback, and the server, over the control channel on descriptor 3 (control.go): the
// server's DevTools connections in, and Chromium's proxy connections out. It forwards
// SIGTERM to Chromium, exits with Chromium's exit status, and kills Chromium when the
// server goes away.
func SandboxInit() {
	if os.Getenv(initEnv) != "1" {
		return
	}
	os.Unsetenv(initEnv) // not for Chromium
	code, err := runInit(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "browserd sandbox init: %v\n", err)
	}
	os.Exit(code)
}

// runInit starts Chromium (args[0] with args[1:]) and relays until it exits.
func runInit(args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("no command")
	}
	closeInherited()
	ctrl, err := controlFromFile(os.NewFile(initControlFD, "control"))
	if err != nil {
		return 2, err
	}
	if err := onlineLink(); err != nil {
		return 2, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(sandboxEgressPort)))
	if err != nil {
		return 2, fmt.Errorf("egress listener: %w", err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = nil
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	// The init runs as uid 0 of the sandbox's user namespace (it needed CAP_NET_ADMIN
	// for onlineLink); Chromium refuses root and must hold no capability, so it runs as
	// chromiumUID in a user namespace of its own, mapped to the init's uid (the
	// browser's uid outside). Entering the namespace clears every capability.
	ids := []syscall.SysProcIDMap{{ContainerID: chromiumUID, HostID: os.Getuid(), Size: 1}}
	gids := []syscall.SysProcIDMap{{ContainerID: chromiumUID, HostID: os.Getgid(), Size: 1}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig:   syscall.SIGKILL,
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: ids,
		GidMappings: gids,
		Credential:  &syscall.Credential{Uid: chromiumUID, Gid: chromiumUID, NoSetGroups: true},
	}
	sigs := make(chan os.Signal, 4)
	// Caught, not ignored: Chromium must not inherit an ignored SIGTERM.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		return 2, fmt.Errorf("start chromium: %w", err)
	}
	terminate := func() { _ = cmd.Process.Signal(syscall.SIGTERM) } // gone already is fine

	var wg sync.WaitGroup
	wg.Go(func() { acceptEgress(ln, ctrl) })
	wg.Go(func() {
		for {
			kind, f, err := ctrl.Recv()
			if err != nil {
				// The server is gone (or broke the protocol): nothing may outlive it.
				_ = cmd.Process.Kill()
				return
			}
			switch kind {
			case msgDevTools:
				if f != nil {
					go dialDevTools(f) // ends with the connection or with the process
				}
			case msgTerminate:
				terminate()
			default:
				if f != nil {
					f.Close()
				}
			}
		}
	})
	go func() { // ends with the process
		for range sigs {
			terminate()
		}
	}()
	err = cmd.Wait()
	ln.Close()
	ctrl.Close()
	wg.Wait()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	} else if err != nil {
		return 2, err
	}
	return 0, nil
}

// acceptEgress hands every connection Chromium opens to its proxy port to the server.
func acceptEgress(ln net.Listener, ctrl *controlConn) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed when Chromium exited
		}
		ours, theirs, err := streamPair()
		if err != nil {
			c.Close()
			continue
		}
		err = ctrl.Send(msgEgress, theirs)
		theirs.Close()
		if err != nil {
			c.Close()
			ours.Close()
			continue
		}
		go splice(c, ours) // ends with the connection
	}
}

// chromiumUID is Chromium's uid inside its user namespace: anything but 0.
const chromiumUID = 1000

// onlineLink gives the sandbox's network namespace a network link that is up: a veth
// pair with both ends inside, and one address from TEST-NET-1 (RFC 5737, never routed)
// without any route beyond itself, so it leads nowhere. Chromium counts itself offline
// (navigator.onLine false, the offline error pages) unless a link other than loopback
// is up and has an address; everything still goes through the session proxy.
//
// The namespace is final when onlineLink returns, before Chromium starts: Chromium
// watches links and addresses (NetworkChangeNotifier, over netlink), and any change
// it sees fails the connections it is setting up with net::ERR_NETWORK_CHANGED. So the
// links get no IPv6 address at all (addrgenmode none): the kernel would otherwise give
// each end a link-local one whose duplicate address detection ends 1–2 s after the link
// comes up, when a fresh session's first navigation is under way (docs/PERFORMANCE.md,
// "ERR_NETWORK_CHANGED"). IPv6 is not missed: the only way out is the proxy on 127.0.0.1.
// And onlineLink waits until the kernel reports both links operationally up.
func onlineLink() error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("sandbox network link: %w", err)
	}
	links := []string{"eth1", "eth0"}
	for _, name := range links {
		l, err := netlink.LinkByName(name)
		if err == nil {
			// EAFNOSUPPORT: a kernel without IPv6 gives no IPv6 address anyway.
			if err = netlink.LinkSetIP6AddrGenMode(l, addrGenModeNone); errors.Is(err, syscall.EAFNOSUPPORT) {
				err = nil
			}
		}
		if err == nil && name == "eth0" {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 1), Mask: net.CIDRMask(32, 32)}}
			err = netlink.AddrAdd(l, addr)
		}
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("sandbox network link %s: %w", name, err)
		}
	}
	return waitOperUp(links, 5*time.Second)
}

// addrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): the kernel makes no
// IPv6 link-local address for the link.
const addrGenModeNone = 1

// waitOperUp waits until every link in names is operationally up (IFF_RUNNING), which
// the kernel sets a moment after the link is set up and its peer has carrier: Chromium,
// started before, would see the link go online later.
func waitOperUp(names []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, name := range names {
		for {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return fmt.Errorf("sandbox network link %s: %w", name, err)
			}
			if a := l.Attrs(); a.OperState == netlink.OperUp && a.Flags&net.FlagRunning != 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sandbox network link %s is not up after %v (state %v)", name, limit, l.Attrs().OperState)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// dialDevTools connects a connection passed by the server to Chromium's DevTools port.
func dialDevTools(f *os.File) {
	c, err := fileConn(f)
	if err != nil {
		return
	}
	d, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(sandboxDevToolsPort)))
	if err != nil {
		c.Close()
		return
	}
	splice(c, d)
}

// closeInherited marks every inherited descriptor above the control socket
// close-on-exec, so that Chromium gets only its standard streams.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd > initControlFD {
			syscall.CloseOnExec(fd)
		}
	}
}

var _ io.Closer = (*controlConn)(nil)
