package proxy

import (
	"net/http"
	"strings"
	"time"
)

// refusedLog limits the warnings about refused destinations: one per host, for the first
// maxRefusedHosts hosts of a proxy, then one a minute at most.
type refusedLog struct {
	hosts map[string]bool
	last  time.Time // of the last warning past the cap
}

const maxRefusedHosts = 64

// first reports whether a refusal of host is to be logged at Warn. The caller holds mu.
func (l *refusedLog) first(host string, now time.Time) bool {
	if l.hosts[host] {
		return false
	}
	if len(l.hosts) < maxRefusedHosts {
		if l.hosts == nil {
			l.hosts = make(map[string]bool)
		}
		l.hosts[host] = true
		return true
	}
	if now.Sub(l.last) < time.Minute {
		return false
	}
	l.last = now
	return true
}

// refuse answers a request to a destination the policy refuses: 403 with a page saying
// what was refused and how the operator allows it (400 for a host that is not valid).
// For a CONNECT, Chromium shows ERR_TUNNEL_CONNECTION_FAILED and not the page.
func (p *Proxy) refuse(w http.ResponseWriter, rt *routing, be *BlockedError) {
	key := be.Host
	if be.Upstream {
		key = "upstream " + key
	}
	p.mu.Lock()
	warn := rt.refused.first(key, time.Now())
	p.mu.Unlock()
	args := []any{"host", be.Host, "port", be.Port, "upstream", be.Upstream}
	if be.Addr.IsValid() {
		args = append(args, "addr", be.Addr.String(), "class", string(be.Class))
	}
	switch {
	case be.BadHost:
		args = append(args, "reason", "not a valid host name or IP address")
	case be.ServerPort:
		args = append(args, "reason", "a port of the browserd server itself")
	default:
		args = append(args, "reason", "not a public address", "hint", "allow private networks with --allow-private-networks or BROWSERD_ALLOW_PRIVATE_NETWORKS=true")
	}
	if warn {
		rt.log.Warn("proxy refused a destination", args...)
	} else {
		rt.log.Debug("proxy refused a destination", args...)
	}
	code, kind := http.StatusForbidden, "private-network"
	switch {
	case be.BadHost:
		code, kind = http.StatusBadRequest, "invalid-host"
	case be.ServerPort:
		kind = "server-port"
	}
	w.Header().Set("X-Browserd-Blocked", kind)
	w.Header().Set("X-Browserd-Proxy-Error", strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, "browserd proxy: "+be.Error()))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(be.page())) // the client may be gone; nothing to do about it
}
