package proxy

import (
	"net"
	"sync"
)

// connListener is a net.Listener whose connections are handed to it (Proxy.ServeConn)
// rather than accepted from a socket, so that one http.Server serves, tracks and closes
// them like accepted ones.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// hand gives c to the server's accept loop; after Close it closes c and returns
// net.ErrClosed.
func (l *connListener) hand(c net.Conn) error {
	select {
	case <-l.done:
		c.Close() // never served
		return net.ErrClosed
	default:
	}
	select {
	case l.ch <- c:
		return nil
	case <-l.done:
		c.Close() // never served
		return net.ErrClosed
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return handedAddr{} }

// handedAddr is the address of the connections handed to a proxy.
type handedAddr struct{}

func (handedAddr) Network() string { return "handed" }
func (handedAddr) String() string  { return "handed" }
