package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// parsePublicURL checks a configured public URL: http or https, a host, an optional path
// prefix, nothing else.
func parsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("httpapi: public URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("httpapi: public URL %q must be http(s)://host[:port][/prefix]", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

// publicBase returns the base URL clients reach the server at: the configured one, or
// else the one the request came to (scheme from TLS or X-Forwarded-Proto, host from Host).
func (s *Server) publicBase(r *http.Request) url.URL {
	if s.public != nil {
		return *s.public
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.EqualFold(strings.TrimSpace(p), "https") {
		scheme = "https"
	}
	return url.URL{Scheme: scheme, Host: r.Host}
}

// connectionURLs returns a session's connectUrl, ws(s)://host/prefix/connect?signingKey=…
// (wss when base is https), and seleniumRemoteUrl, http(s)://host/prefix/webdriver
// (spec §2.3, §4.1, §4.2).
func connectionURLs(base url.URL, signingKey string) (connectURL, seleniumURL string) {
	ws := "ws"
	if base.Scheme == "https" {
		ws = "wss"
	}
	c := url.URL{Scheme: ws, Host: base.Host, Path: base.Path + "/connect",
		RawQuery: url.Values{"signingKey": {signingKey}}.Encode()}
	sel := url.URL{Scheme: base.Scheme, Host: base.Host, Path: base.Path + "/webdriver"}
	return c.String(), sel.String()
}
