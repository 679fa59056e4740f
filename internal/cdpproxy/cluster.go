package cdpproxy

import (
	"net/http"
	"strings"
)

// SessionOfRequest names the session of a CDP connection request (/connect, or a
// websocket upgrade at /) from its credentials: the id a signingKey starts with, or the
// legacy sessionId. In a cluster the node that does not run the session proxies the
// websocket to the one that does (internal/cluster); nothing is verified here, the owner
// authenticates the connection as if the client had come to it directly.
func SessionOfRequest(r *http.Request) (id string, ok bool) {
	switch {
	case r.URL.Path == "/connect":
	case r.URL.Path == "/" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
	default:
		return "", false
	}
	c, err := ParseCredentials(r.URL.Query())
	if err != nil {
		return "", false // the node that got it refuses it
	}
	return c.ClaimedSession()
}
