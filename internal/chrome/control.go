package chrome

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// The control channel joins the server and a sandbox's init process: one AF_UNIX
// SOCK_SEQPACKET socket pair, inherited by the init as file descriptor 3. It is the only
// way between the two network namespaces: no socket file exists that another process
// could open or replace. Each message is one byte of kind, with at most one file
// descriptor attached (SCM_RIGHTS):
//
//	server → init  msgDevTools + fd  connect fd to Chromium's DevTools port inside
//	server → init  msgTerminate      send SIGTERM to Chromium (a graceful stop)
//	init → server  msgEgress + fd    a connection Chromium opened to its proxy port
const (
	msgDevTools  byte = 'D'
	msgTerminate byte = 'T'
	msgEgress    byte = 'E'
)

// initControlFD is the control socket's descriptor number in the init process.
const initControlFD = 3

// controlConn is one end of a control channel. Send is safe for concurrent use; Recv
// must be called from one goroutine.
type controlConn struct {
	c  *net.UnixConn
	mu sync.Mutex // serialises Send
}

// newControlPair returns the server's end of a new control channel and the file the
// init process inherits as its end.
func newControlPair() (*controlConn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "control")
	theirs := os.NewFile(uintptr(fds[1]), "control-init")
	cc, err := controlFromFile(ours)
	if err != nil {
		theirs.Close() // never handed out
		return nil, nil, err
	}
	return cc, theirs, nil
}

// controlFromFile wraps an inherited control socket; f is closed (the conn holds a dup).
func controlFromFile(f *os.File) (*controlConn, error) {
	defer f.Close() // net.FileConn dups it
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close() // not ours to keep
		return nil, fmt.Errorf("control socket: %T is not a unix socket", c)
	}
	return &controlConn{c: uc}, nil
}

// Send sends one message of kind, with conn's descriptor attached when conn is not nil.
// conn stays open; the receiver gets a duplicate.
func (cc *controlConn) Send(kind byte, conn *os.File) error {
	var oob []byte
	if conn != nil {
		oob = syscall.UnixRights(int(conn.Fd()))
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_, _, err := cc.c.WriteMsgUnix([]byte{kind}, oob, nil)
	return err
}

// Recv waits for the next message and returns its kind and the descriptor attached to
// it (nil when none). io.EOF means the other end is gone.
func (cc *controlConn) Recv() (byte, *os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4*4)) // room for a few descriptors; extras are closed
	n, oobn, _, _, err := cc.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return 0, nil, err
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, nil, fmt.Errorf("control message: %w", err)
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				syscall.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "passed"))
			}
		}
	}
	if n == 0 {
		for _, f := range files {
			f.Close() // a zero-length read is the peer's shutdown
		}
		return 0, nil, io.EOF
	}
	var f *os.File
	if len(files) > 0 {
		f = files[0]
		for _, extra := range files[1:] {
			extra.Close() // the protocol passes one descriptor per message
		}
	}
	return buf[0], f, nil
}

// Close closes the channel; the peer's Recv returns io.EOF.
func (cc *controlConn) Close() error { return cc.c.Close() }

// streamPair returns a connected pair of unix stream sockets: the first as a net.Conn
// for this process, the second as a file to pass to the peer (close it after Send).
func streamPair() (net.Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "pair")
	theirs := os.NewFile(uintptr(fds[1]), "pair-peer")
	c, err := net.FileConn(ours)
	ours.Close() // FileConn holds a dup
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("socket pair: %w", err)
	}
	return c, theirs, nil
}

// fileConn turns a received descriptor into a net.Conn; f is closed.
func fileConn(f *os.File) (net.Conn, error) {
	defer f.Close() // FileConn holds a dup
	return net.FileConn(f)
}

// splice copies between a and b in both directions until both directions are done,
// half-closing each write side at its reader's EOF, then closes both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = cw.CloseWrite() // the other direction may still be busy; a failure shows there
		} else {
			// An error in one direction ends both: nothing more can be relayed reliably.
			a.Close()
			b.Close()
		}
	}
	wg.Go(func() { half(a, b) })
	wg.Go(func() { half(b, a) })
	wg.Wait()
	a.Close()
	b.Close()
}
