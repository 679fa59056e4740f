package browserd

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// MaxDomainPatternLength bounds a proxy rule's domainPattern (a regular expression).
const MaxDomainPatternLength = 1024

// ProxyUpstream is a proxy server that a session proxy forwards connections to.
type ProxyUpstream struct {
	Scheme   string // http, https or socks5
	Host     string // host:port, the port always given
	Username string
	Password string
	// Managed marks an operator-configured upstream (--proxy-upstream, behind proxies:true
	// and type "browserbase" rules). Session proxies trust it to be anywhere, private
	// networks included; an upstream a client named (type "external") must not be in the
	// server's own or private networks unless the operator allows them.
	Managed bool
}

// String returns the upstream as a URL without its credentials, safe to log and show.
func (u ProxyUpstream) String() string { return u.Scheme + "://" + u.Host }

// ParseProxyUpstream parses a proxy server URL: http://, https:// or socks5:// (socks5h://
// is read as socks5://, which always resolves names at the proxy) with a host and an
// optional port (default 80, 443 and 1080). Credentials in the URL are used when username
// and password are both empty. The error says what is wrong, without the URL, which may
// carry a password.
func ParseProxyUpstream(raw, username, password string) (ProxyUpstream, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return ProxyUpstream{}, fmt.Errorf("must be a URL like http://host:port, https://host:port or socks5://host:port")
	}
	scheme := strings.ToLower(u.Scheme)
	var port string
	switch scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	case "socks5", "socks5h":
		scheme, port = "socks5", "1080"
	default:
		return ProxyUpstream{}, fmt.Errorf("must use the scheme http, https or socks5")
	}
	if h := u.Hostname(); h == "" || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
		return ProxyUpstream{}, fmt.Errorf("must name a host") // e.g. socks5://:: has host ":"
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return ProxyUpstream{}, fmt.Errorf("must not have a path, query or fragment")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return ProxyUpstream{}, fmt.Errorf("must have a port between 1 and 65535")
		}
		port = p
	}
	up := ProxyUpstream{Scheme: scheme, Host: net.JoinHostPort(strings.ToLower(u.Hostname()), port), Username: username, Password: password}
	if username == "" && password == "" && u.User != nil {
		up.Username = u.User.Username()
		up.Password, _ = u.User.Password() // absent password: empty
	}
	if strings.ContainsAny(up.Username+up.Password, "\r\n\x00") {
		return ProxyUpstream{}, fmt.Errorf("credentials must not contain control characters")
	}
	return up, nil
}

// CompileDomainPattern compiles a proxy rule's domainPattern: a regular expression (Go's
// RE2 syntax) that must match the whole host name, case-insensitively
// (docs/COMPATIBILITY.md, "Proxies").
func CompileDomainPattern(p string) (*regexp.Regexp, error) {
	if len(p) > MaxDomainPatternLength {
		return nil, fmt.Errorf("must be at most %d characters", MaxDomainPatternLength)
	}
	if _, err := regexp.Compile(p); err != nil { // alone, for an error that shows only p
		return nil, fmt.Errorf("is not a valid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return regexp.Compile(`^(?i:` + p + `)$`)
}

// ProxyRoute sends the connections to matching hosts through an upstream, or directly.
type ProxyRoute struct {
	// Pattern is the domainPattern as given; "" matches every host.
	Pattern string
	re      *regexp.Regexp
	// Upstream is where matching connections go; nil means directly (type "none").
	Upstream *ProxyUpstream
}

// NetworkPlan says how a session proxy handles the browser's connections.
type NetworkPlan struct {
	// Routes in the order they are tried: rules with a domainPattern in request order,
	// then the first rule without one, the default for every other host.
	Routes []ProxyRoute
	// BlockAds refuses connections to hosts on the ad-server list.
	BlockAds bool
	// RootCAs are PEM CA certificates the session trusts beyond the system's, for
	// https upstream proxies (proxySettings.caCertificates; certificate.go).
	RootCAs [][]byte
}

// Proxied reports whether any route goes through an upstream proxy.
func (p NetworkPlan) Proxied() bool {
	for _, r := range p.Routes {
		if r.Upstream != nil {
			return true
		}
	}
	return false
}

// Route returns the upstream for host (a host name or IP address, without port): that of
// the first route that matches, or nil (direct) when none does.
func (p NetworkPlan) Route(host string) *ProxyUpstream {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, r := range p.Routes {
		if r.re == nil || r.re.MatchString(host) {
			return r.Upstream
		}
	}
	return nil
}

// PlanProxies turns a create request's proxies into routes. managed are the upstreams
// the server offers for proxies:true and type "browserbase" rules; pick chooses one of
// them for the session. It fails with CodeInvalid when the request needs managed
// proxies and the server has none.
func PlanProxies(req CreateSessionRequest, managed []ProxyUpstream, pick int) ([]ProxyRoute, error) {
	managedUpstream := func(field string) (*ProxyUpstream, error) {
		if len(managed) == 0 {
			return nil, Errorf(CodeInvalid, "%s: this server has no managed proxies; configure them with --proxy-upstream, or use proxies of type \"external\"", field)
		}
		u := managed[((pick%len(managed))+len(managed))%len(managed)]
		u.Managed = true
		return &u, nil
	}
	if req.ProxyManaged {
		u, err := managedUpstream("body/proxies")
		if err != nil {
			return nil, err
		}
		return []ProxyRoute{{Upstream: u}}, nil
	}
	var routes []ProxyRoute
	var fallback *ProxyRoute
	for i, r := range req.Proxy {
		field := fmt.Sprintf("body/proxies/%d", i)
		route := ProxyRoute{Pattern: r.DomainPattern}
		switch r.Type {
		case "external":
			u, err := r.parsedUpstream()
			if err != nil {
				return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s/server %v", field, err), Err: err}
			}
			route.Upstream = &u
		case "browserbase":
			u, err := managedUpstream(field)
			if err != nil {
				return nil, err
			}
			route.Upstream = u
		case "none":
		default:
			return nil, Errorf(CodeInvalid, "%s/type must be one of browserbase, external, none", field)
		}
		if r.DomainPattern == "" {
			if fallback == nil {
				fallback = &route
			}
			continue
		}
		re, err := r.parsedPattern()
		if err != nil {
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s/domainPattern %v", field, err), Err: err}
		}
		route.re = re
		routes = append(routes, route)
	}
	if fallback != nil {
		routes = append(routes, *fallback)
	}
	return routes, nil
}

// parsedUpstream is the rule's upstream, as decoding parsed it (or parsed now, for a
// rule that was not decoded). It is a copy: planning may change it.
func (r ProxyRule) parsedUpstream() (ProxyUpstream, error) {
	if r.upstream != nil {
		return *r.upstream, nil
	}
	return ParseProxyUpstream(r.Server, r.Username, r.Password)
}

// parsedPattern is the rule's compiled domainPattern, as decoding compiled it (or
// compiled now).
func (r ProxyRule) parsedPattern() (*regexp.Regexp, error) {
	if r.re != nil {
		return r.re, nil
	}
	return CompileDomainPattern(r.DomainPattern)
}
