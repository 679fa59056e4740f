package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// benchUpstream is a small HTTP forward proxy on 127.0.0.1, the external proxy of the
// clients phase's proxy scenarios: CONNECT tunnels and absolute-URI requests, as any
// upstream proxy a user names in `proxies` serves them. It counts what it forwarded, so the
// bench can tell that the sessions really went through it.
type benchUpstream struct {
	srv       *http.Server
	ln        net.Listener
	transport *http.Transport
	done      chan error
	url       string

	requests atomic.Int64 // absolute-URI requests forwarded
	tunnels  atomic.Int64 // CONNECT tunnels opened

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // hijacked tunnel ends, closed by close
	closed bool
	wg     sync.WaitGroup // tunnel relays
}

func startBenchUpstream() (*benchUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &benchUpstream{ln: ln, done: make(chan error, 1), url: "http://" + ln.Addr().String(),
		conns:     map[net.Conn]struct{}{},
		transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() { u.done <- u.srv.Serve(ln) }() // ends in close, which reads done
	return u, nil
}

// hopHeaders are the hop-by-hop headers a proxy does not forward (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (u *benchUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		u.tunnel(w, r)
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "absolute http:// URIs only", http.StatusBadRequest)
		return
	}
	u.requests.Add(1)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := u.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body) // a client that went away needs no more
}

// tunnel answers CONNECT host:port with 200 and relays bytes both ways until either
// side closes.
func (u *benchUpstream) tunnel(w http.ResponseWriter, r *http.Request) {
	dst, err := net.DialTimeout("tcp", r.Host, 10*time.Second)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		dst.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	src, buf, err := hj.Hijack()
	if err != nil {
		dst.Close()
		return // the connection is gone; nothing can be answered
	}
	if !u.track(src, dst) {
		src.Close()
		dst.Close()
		return
	}
	u.tunnels.Add(1)
	if _, err := src.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		u.untrack(src, dst)
		return
	}
	// Bytes the client sent after its CONNECT may already sit in buf.
	var fromClient io.Reader = src
	if n := buf.Reader.Buffered(); n > 0 {
		fromClient = io.MultiReader(io.LimitReader(buf.Reader, int64(n)), src)
	}
	u.wg.Go(func() { // ends when either side closes (close closes both)
		defer u.untrack(src, dst)
		var relay sync.WaitGroup
		relay.Go(func() {
			_, _ = io.Copy(dst, fromClient) // ends with either connection
			closeWrite(dst)
		})
		_, _ = io.Copy(src, dst)
		closeWrite(src)
		relay.Wait()
	})
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite() // the peer then sees EOF; a closed connection is fine too
	}
}

// track remembers a tunnel's ends so close can end it; false once closing.
func (u *benchUpstream) track(cs ...net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	for _, c := range cs {
		u.conns[c] = struct{}{}
	}
	return true
}

func (u *benchUpstream) untrack(cs ...net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(u.conns, c)
	}
}

// close stops the proxy, ends its tunnels and waits for their relays.
func (u *benchUpstream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx) // open requests of a finished run change nothing
	<-u.done                // ErrServerClosed, or an accept error that no longer matters
	u.mu.Lock()
	u.closed = true
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
	u.transport.CloseIdleConnections()
}
