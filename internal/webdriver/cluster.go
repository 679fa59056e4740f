package webdriver

import (
	"net/http"
	"strings"
)

// SessionOfRequest names the browserd session of a WebDriver request under the Handler's
// prefix from its credentials: the id its x-bb-signing-key starts with, or its
// session-id header. In a cluster the node that does not run the session forwards the
// request to the one that does, where the WebDriver session and its chromedriver live
// (internal/cluster); nothing is verified here, the owner checks the credentials.
func (h *Handler) SessionOfRequest(r *http.Request) (id string, ok bool) {
	path, ok := strings.CutPrefix(r.URL.Path, h.cfg.Prefix)
	if !ok || (path != "" && path[0] != '/') {
		return "", false
	}
	c, err := credentials(r.Header)
	if err != nil {
		return "", false // the node that got it refuses it
	}
	return c.ClaimedSession()
}
