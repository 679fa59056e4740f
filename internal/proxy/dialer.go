package proxy

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
)

// Dialer makes the connections of a client inside the server that reaches sites on a
// project's behalf (POST /v1/fetch, internal/fetch), under the rules of session proxies,
// so that there is one address policy: a direct connection goes only to an address the
// policy allows (every address a name resolves to is checked, and exactly those are
// dialled, so a second DNS answer cannot swap a private one in), never to the server's
// own ports; a connection through an operator's managed upstream is tunnelled to the
// destination (CONNECT, or SOCKS5), which the upstream resolves in its own network.
type Dialer struct{ d *dialer }

// NewDialer returns a Dialer with cfg's policy: AllowPrivate, Reserved, Resolve,
// DialTimeout and TLS (for https upstreams). AdHosts and Logger are not used.
func NewDialer(cfg Config) *Dialer {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	return &Dialer{d: &dialer{
		net:     net.Dialer{Timeout: cfg.DialTimeout, ControlContext: cfg.dialControl},
		pol:     newPolicy(cfg),
		tls:     &tlsConfigSource{cfg.TLS},
		bytes:   new(atomic.Int64),
		timeout: cfg.DialTimeout,
	}}
}

// Dial connects to target (host:port): directly when u is nil, else through u. A
// destination the policy refuses is a *BlockedError; a failure at u names u without its
// credentials.
func (d *Dialer) Dial(ctx context.Context, u *bb.ProxyUpstream, target string) (net.Conn, error) {
	return d.d.dial(ctx, u, target)
}

// UpstreamBytes returns the bytes exchanged with upstream proxies so far, both ways.
func (d *Dialer) UpstreamBytes() int64 { return d.d.bytes.Load() }
