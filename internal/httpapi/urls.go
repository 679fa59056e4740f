package httpapi

import (
	"net/http"
	"net/url"

	bb "github.com/browserd/browserd"
)

// publicBase returns the base URL clients reach the server at (bb.PublicBase).
func (s *Server) publicBase(r *http.Request) url.URL { return bb.PublicBase(r, s.public) }

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
