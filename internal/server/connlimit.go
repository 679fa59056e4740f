package server

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// connLimiter is a listener that refuses connections beyond a cap in all and a cap per
// client address (IPv6: per /64), so that idle or slow connections of one client, or
// of many, cannot take every file descriptor and goroutine (security review F4.2).
// Loopback peers and trusted proxies carry many clients and have only the total cap.
// A refused connection gets a 503 and is closed; Accept never blocks on the caps.
type connLimiter struct {
	net.Listener
	max, perIP int
	trusted    []netip.Prefix
	log        *slog.Logger

	mu      sync.Mutex
	total   int
	byIP    map[string]int // at most total entries
	logged  time.Time      // last refusal logged: at most one a minute
	refused int            // refusals since
}

func newConnLimiter(ln net.Listener, max, perIP int, trusted []netip.Prefix, logger *slog.Logger) net.Listener {
	if max <= 0 && perIP <= 0 {
		return ln
	}
	return &connLimiter{Listener: ln, max: max, perIP: perIP, trusted: trusted, log: logger, byIP: make(map[string]int)}
}

// Accept returns the next connection within the caps.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ""
		if a, ok := addrOf(c.RemoteAddr().String()); ok && l.perIP > 0 && !a.IsLoopback() && !trustedAddr(l.trusted, a) {
			key = clientKey(a)
		}
		if why := l.acquire(key); why != "" {
			l.logRefusal(why)
			refuse(c, why)
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

// acquire takes a slot for a connection of key ("" for exempt addresses); it returns
// why not.
func (l *connLimiter) acquire(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return "too many connections"
	}
	if key != "" && l.byIP[key] >= l.perIP {
		return "too many connections from this address"
	}
	l.total++
	if key != "" {
		l.byIP[key]++
	}
	return ""
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if key != "" {
		if l.byIP[key]--; l.byIP[key] <= 0 {
			delete(l.byIP, key)
		}
	}
}

// logRefusal logs refusals, at most once a minute: a flood must not flood the log.
func (l *connLimiter) logRefusal(why string) {
	l.mu.Lock()
	l.refused++
	n, now := l.refused, time.Now()
	if now.Sub(l.logged) < time.Minute {
		l.mu.Unlock()
		return
	}
	l.logged, l.refused = now, 0
	l.mu.Unlock()
	l.log.Warn("connections refused", "reason", why, "count", n, "max_conns", l.max, "max_conns_per_ip", l.perIP)
}

// refuse answers a connection beyond the caps with a 503 in the API's error shape and
// closes it, without reading its request.
func refuse(c net.Conn, why string) {
	defer c.Close()
	body := `{"statusCode":503,"code":503,"error":"Service Unavailable","message":"` + why + `"}` + "\n"
	// Best effort: the client may be gone or may not read. A new socket's buffer takes
	// these bytes at once, so Accept is not held up.
	_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n" +
		"Retry-After: 1\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
}

// limitedConn gives its slot back when closed, once (http.Server and hijackers may both
// close it).
type limitedConn struct {
	net.Conn
	l    *connLimiter
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
