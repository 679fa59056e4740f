package browserd

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ParsePublicURL checks a configured public URL (--public-url): http or https, a host,
// an optional path prefix, nothing else. The result has no trailing slash.
func ParsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("public URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("public URL %q must be http(s)://host[:port][/prefix]", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

// PublicBase returns the base URL clients reach the server at, from which the REST API
// and the live view build the URLs they hand out (connectUrl, seleniumRemoteUrl, live
// view and dashboard links): public (ParsePublicURL) when configured, or else the one
// the request came to, scheme from TLS or X-Forwarded-Proto and host from Host.
func PublicBase(r *http.Request, public *url.URL) url.URL {
	if public != nil {
		return *public
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.EqualFold(strings.TrimSpace(p), "https") {
		scheme = "https"
	}
	return url.URL{Scheme: scheme, Host: r.Host}
}
