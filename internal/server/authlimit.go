package server

import (
	"container/list"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxAuthClients bounds the addresses the authLimiter remembers: they are chosen by
// whoever connects. Beyond it, the address that failed least recently is forgotten.
const maxAuthClients = 16384

// authLimiter limits failed authentications per client address (security review F12):
// every route that checks a credential (API keys, the gateway, WebDriver, dashboard
// sign-in, live view tokens, the metrics token) answers a bad one with 401, and after
// max of them in a window, the address's further 401s are 429 with Retry-After. A
// request with a good credential is served as always, whatever its address did: the
// limiter only ever replaces a 401, so a client behind the same NAT or proxy as a
// guesser is never locked out, and a successful authentication is never slowed.
type authLimiter struct {
	max     int
	window  time.Duration
	trusted []netip.Prefix
	limit   int              // addresses remembered at most
	now     func() time.Time // time.Now; tests move it
	// hop reports a request a cluster peer forwarded (a verified hop header): its
	// X-Forwarded-For names the client as a trusted proxy's would. nil: none.
	hop func(*http.Request) bool
	log *slog.Logger

	mu      sync.Mutex
	clients map[string]*list.Element // of *authFailures
	lru     list.List                // front: failed most recently
}

// authFailures are an address's failures in its current window.
type authFailures struct {
	key   string
	start time.Time
	n     int
}

func newAuthLimiter(max int, window time.Duration, trusted []netip.Prefix, logger *slog.Logger) *authLimiter {
	return &authLimiter{max: max, window: window, trusted: trusted, limit: maxAuthClients, now: time.Now, log: logger,
		clients: make(map[string]*list.Element)}
}

// wrap counts next's 401 answers by client address and turns those beyond the limit
// into 429.
func (l *authLimiter) wrap(next http.Handler) http.Handler {
	if l.max <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&authWriter{ResponseWriter: w, l: l, key: l.clientKey(r)}, r)
	})
}

// clientKey returns the key a request's failures count under: its TCP peer's address,
// or, when the peer is a trusted proxy, the last address of X-Forwarded-For that is not
// a trusted proxy. A request a cluster peer forwarded (verified hop) counts the same way.
func (l *authLimiter) clientKey(r *http.Request) string {
	a, ok := addrOf(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if trustedAddr(l.trusted, a) || (l.hop != nil && l.hop(r)) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: trust nothing to its left
			}
			a = h.Unmap()
			if !trustedAddr(l.trusted, a) {
				break
			}
		}
	}
	return clientKey(a)
}

// failed records a failure of key and returns how long it must wait when it is beyond
// the limit, else 0.
func (l *authLimiter) failed(key string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var f *authFailures
	if e := l.clients[key]; e != nil {
		f = e.Value.(*authFailures)
		l.lru.MoveToFront(e)
	} else {
		if len(l.clients) >= l.limit {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.clients, old.Value.(*authFailures).key)
		}
		f = &authFailures{key: key, start: now}
		l.clients[key] = l.lru.PushFront(f)
	}
	if now.Sub(f.start) >= l.window {
		f.start, f.n = now, 0
	}
	f.n++
	if f.n <= l.max {
		return 0
	}
	if f.n == l.max+1 { // once per address and window
		l.log.Warn("authentication failures over the limit", "client", key, "failures", f.n, "window", l.window)
	}
	return max(f.start.Add(l.window).Sub(now), time.Second)
}

// authWriter replaces a 401 beyond the limit with a 429.
type authWriter struct {
	http.ResponseWriter
	l       *authLimiter
	key     string
	wrote   bool
	swallow bool // the handler's own 401 body is dropped
}

func (w *authWriter) WriteHeader(code int) {
	if w.wrote {
		w.ResponseWriter.WriteHeader(code) // let net/http say it is superfluous
		return
	}
	if code >= 200 {
		w.wrote = true
	}
	if code != http.StatusUnauthorized {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	wait := w.l.failed(w.key)
	if wait == 0 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.swallow = true
	h := w.Header()
	h.Del("Content-Length")
	h.Del("WWW-Authenticate")
	secs := int((wait + time.Second - 1) / time.Second)
	h.Set("Retry-After", fmt.Sprint(secs))
	writeLimitError(w.ResponseWriter, http.StatusTooManyRequests, fmt.Sprintf(
		"too many failed authentications from this address; try again in %d s", secs))
}

func (w *authWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps net/http's sendfile path for downloads.
func (w *authWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return io.Copy(io.Discard, r)
	}
	return io.Copy(w.ResponseWriter, r) // uses the ResponseWriter's own ReadFrom
}

// Unwrap lets http.ResponseController (flushes, hijacks, deadlines) reach the connection.
func (w *authWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
