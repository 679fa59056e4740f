// Package proxy is the per-session forward proxy, every browser's only way out. Chromium is
// launched with --proxy-server pointing at it (127.0.0.1, a random port, or a connection
// handed to ServeConn) and never sees an upstream proxy's address or credentials. For every
// connection (HTTP CONNECT tunnels and plain HTTP requests in absolute form) it picks a
// route by host from the session's bb.NetworkPlan (replaceable with SetPlan), first match
// wins: directly, or through an upstream HTTP, HTTPS or SOCKS5 proxy that it authenticates
// to itself (basic auth; RFC 1929 for SOCKS5). It counts the bytes exchanged with upstream
// proxies, both directions, for the session's proxyBytes, and refuses connections to
// ad-server hosts when the plan blocks ads (HostSet, an EasyList-derived host list embedded
// at build time; see scripts/adhosts.sh).
//
// Direct connections, and connections to upstream proxies a client named, go only to public
// addresses (Classify) unless Config.AllowPrivate; a host name is resolved once and the
// connection dials exactly the addresses checked. The server's own ports (bb.ReservedPorts)
// are refused on loopback and local addresses even with AllowPrivate.
package proxy
