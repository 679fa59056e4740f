// Package proxy is the per-session forward proxy. Chromium is launched with
// --proxy-server pointing at it (127.0.0.1, a random port) and never sees an upstream
// proxy's address or credentials. For every connection (HTTP CONNECT tunnels and plain
// HTTP requests in absolute form) it picks a route by host from the session's
// bb.NetworkPlan, first match wins: directly, or through an upstream HTTP, HTTPS or SOCKS5
// proxy that it authenticates to itself (basic auth; RFC 1929 for SOCKS5). It counts the
// bytes exchanged with upstream proxies, both directions, for the session's proxyBytes,
// and refuses connections to ad-server hosts when the plan blocks ads (HostSet, an
// EasyList-derived host list embedded at build time; see scripts/adhosts.sh).
package proxy
