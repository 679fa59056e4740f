package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Members is this node's view of the cluster: the nodes it read at its last heartbeat.
// The membership loop implements it.
type Members interface {
	// Node returns a member by id.
	Node(id string) (bb.Node, bool)
	// Nodes returns every member (placement's candidates).
	Nodes() []bb.Node
	// Self returns this node's id.
	Self() string
}

// SessionStore finds a session's owner; the shared database implements it.
type SessionStore interface {
	Session(ctx context.Context, id string) (*bb.Session, error)
}

// SessionOf names the session a request is about, from its path or credentials, without
// checking them (the owner does): ok=false for a request about no one session. The
// package that serves a route family supplies it (httpapi, cdpproxy, liveview, webdriver).
type SessionOf func(r *http.Request) (id string, ok bool)

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	Members  Members
	Sessions SessionStore
	Keys     *Keyring
	// Routes name the session of each route family; the first that answers ok wins.
	Routes []SessionOf
	// MaxCreateBody bounds the create body placement buffers to retry it (httpapi's
	// limit); a larger one is served here, where it is refused.
	MaxCreateBody int64
	// Transport reaches the peers; nil: a transport that ignores proxy settings.
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Forwarder is the cluster's outermost handler: it serves a request here, or proxies it to
// the node that owns its session, or places a create (place.go). A request that carries a
// verified HopHeader came from a peer and is always served here.
type Forwarder struct {
	cfg   ForwarderConfig
	next  http.Handler
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	rt    http.RoundTripper

	mu     sync.Mutex
	owners map[string]string // session id → node id; a session never changes node
	// placed counts the creates this node placed on each node since that node's last
	// heartbeat it knows of (keyed by that heartbeat): a node's Live is as old as its
	// heartbeat, so without them a burst would all go to the node that looked least
	// loaded 2 s ago.
	placed map[string]placedSince
}

// maxOwners bounds the owner cache; beyond it the cache starts again.
const maxOwners = 8192

// targetKey carries the peer's URL from ServeHTTP to the proxy's Rewrite.
type targetKey struct{}

// NewForwarder returns a Forwarder in front of next, this node's own handler.
func NewForwarder(cfg ForwarderConfig, next http.Handler) *Forwarder {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			// Never through a proxy from the environment: peers are on the cluster network.
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Bodies pass as the owner sent them (downloads keep their encoding and length).
			DisableCompression: true,
		}
	}
	f := &Forwarder{cfg: cfg, next: next, log: cfg.Logger, rt: rt, owners: make(map[string]string), placed: make(map[string]placedSince)}
	f.proxy = &httputil.ReverseProxy{
		Rewrite:       f.rewrite,
		Transport:     rt,
		FlushInterval: -1, // logs, downloads and live streams go through as they come
		ErrorHandler:  f.proxyError,
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return f
}

// ServeHTTP serves r here or forwards it to its session's owner.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.Header[HopHeader]; ok {
		if _, err := f.cfg.Keys.Verify(r); err != nil {
			msg := "invalid " + HopHeader + " header"
			if errors.Is(err, ErrHopExpired) {
				msg = "expired " + HopHeader + " header"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		f.next.ServeHTTP(w, r) // a peer forwarded it: never forwarded again
		return
	}
	stripClusterHeaders(r.Header)
	if r.Method == http.MethodPost && r.URL.Path == "/v1/sessions" {
		f.place(w, r) // place.go
		return
	}
	for _, of := range f.cfg.Routes {
		id, ok := of(r)
		if !ok {
			continue
		}
		if peer, ok := f.owner(r.Context(), id); ok {
			// Never the path: live view paths carry their token.
			f.log.DebugContext(r.Context(), "forwarding to the session's node", "session_id", id, "node", peer.ID, "method", r.Method)
			f.forward(w, r, peer)
			return
		}
		break
	}
	f.next.ServeHTTP(w, r)
}

// stripClusterHeaders drops the X-Browserd-* headers a client sent: only a peer may set
// them, and a peer's requests carry a verified HopHeader.
func stripClusterHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) {
			delete(h, k)
		}
	}
}

// owner returns the live peer that runs session id, or ok=false when this node should
// serve it: this node owns it, the session does not exist (here it gets its 404), the
// store is down (its 503), or the owner is gone (the shared stores answer for it).
func (f *Forwarder) owner(ctx context.Context, id string) (bb.Node, bool) {
	f.mu.Lock()
	nodeID, cached := f.owners[id]
	f.mu.Unlock()
	if !cached {
		s, err := f.cfg.Sessions.Session(ctx, id)
		if err != nil {
			return bb.Node{}, false
		}
		nodeID = s.NodeID
		f.mu.Lock()
		if len(f.owners) >= maxOwners {
			clear(f.owners)
		}
		f.owners[id] = nodeID
		f.mu.Unlock()
	}
	if nodeID == "" || nodeID == f.cfg.Members.Self() {
		return bb.Node{}, false
	}
	n, ok := f.cfg.Members.Node(nodeID)
	if !ok || !n.State.Live() || n.URL == "" {
		return bb.Node{}, false
	}
	return n, true
}

// forward proxies r (an upgrade too) to peer, whose URL comes from the store, never
// from the request.
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, peer bb.Node) {
	u, err := url.Parse(peer.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.log.Error("member has a bad URL", "node", peer.ID, "url", peer.URL)
		writeError(w, http.StatusServiceUnavailable, "the node that runs this session cannot be reached")
		return
	}
	ctx := context.WithValue(context.WithValue(r.Context(), targetKey{}, u), origKey{}, r)
	f.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// rewrite makes the outgoing request of a forward: to the peer's URL, Host and
// credentials as the client sent them, the client's address appended to
// X-Forwarded-For, and a HopHeader.
func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	u := pr.In.Context().Value(targetKey{}).(*url.URL)
	f.setHop(pr.In, pr.Out, u)
}

// setHop points out at peer u and adds what a hop carries. in is the client's request.
func (f *Forwarder) setHop(in, out *http.Request, u *url.URL) {
	out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
	out.Host = in.Host // the owner builds its URLs from the Host the client used
	if xff := in.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		out.Header["X-Forwarded-For"] = xff
	}
	if host, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			host = strings.Join(prior, ", ") + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}
	if p := in.Header.Values("X-Forwarded-Proto"); len(p) > 0 {
		out.Header["X-Forwarded-Proto"] = p
	} else if in.TLS != nil {
		out.Header.Set("X-Forwarded-Proto", "https")
	}
	out.Header.Set(HopHeader, f.cfg.Keys.Sign(f.cfg.Members.Self(), out.Method, out.URL.EscapedPath()))
}

// proxyError answers a forward whose peer could not be reached (or broke off) with 503
// and Retry-After: the client tries again, by then the peer is back or known lost.
func (f *Forwarder) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client is gone
	}
	u, _ := r.Context().Value(targetKey{}).(*url.URL)
	if refused(err) && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isUpgrade(r) {
		// The owner is gone and this node has not yet read that it is (members are
		// read every heartbeat): a read is answered from the shared stores, as it is
		// once the owner is known lost. Nothing was written to w yet.
		if orig, ok := r.Context().Value(origKey{}).(*http.Request); ok { // r is the outgoing request
			f.log.Info("owner unreachable; answered here", "peer", fmt.Sprint(u), "method", r.Method, "err", err)
			f.next.ServeHTTP(w, orig)
			return
		}
	}
	f.log.Warn("forward to peer failed", "peer", fmt.Sprint(u), "method", r.Method, "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "the node that runs this session cannot be reached; try again")
}

// origKey holds, in a forward's context, the client's request as it arrived.
type origKey struct{}

// refused reports whether err is a failure to connect: the request never reached the
// peer, so it can be answered elsewhere.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isUpgrade reports whether r asks for a protocol upgrade (a websocket).
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// writeError writes the API's error shape (spec/API.md §1.5).
func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		h.Set("x-should-retry", "true")
	} else {
		h.Set("x-should-retry", "false")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{ // the client may be gone
		"statusCode": status, "code": status, "error": http.StatusText(status), "message": msg,
	})
}
