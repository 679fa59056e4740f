package liveview

import (
	"net/http"
	"strings"

	bb "github.com/browserd/browserd"
)

// SessionOfRequest names the session of a live view or DevTools request,
// /debug/{token}/…, from the session id its token carries (bb.Signer.LiveToken:
// "lv1.<id>.<expiry>.<mode>.<MAC>"). In a cluster the node that does not run the session
// forwards the request, websockets included, to the one that does (internal/cluster);
// the token is not verified here, the owner does. The dashboard (/ui/) is served where
// it lands.
func SessionOfRequest(r *http.Request) (id string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/debug/")
	if !ok {
		return "", false
	}
	token, _, _ := strings.Cut(rest, "/")
	parts := strings.SplitN(token, ".", 3)
	if len(parts) < 3 || parts[0] != "lv1" || !bb.ValidID(parts[1]) {
		return "", false
	}
	return parts[1], true
}
