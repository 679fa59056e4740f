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
// the token is not verified here, the owner does. The dashboard's pages of one session
// (/ui/sessions/{id}, its release form, its logs, downloads and recording, and the
// inspector's data under /ui/api/sessions/{id}/…, whose live logs, recording and
// downloads the owner flushes first) go to the owner too, which has the live view and
// the browser to release; the sign-in cookie is
// sealed (signin.go), so the owner honours it. The rest of the dashboard is served where
// it lands.
func SessionOfRequest(r *http.Request) (id string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/ui/sessions/")
	if !ok {
		rest, ok = strings.CutPrefix(r.URL.Path, "/ui/api/sessions/")
	}
	if ok {
		id, _, _ = strings.Cut(rest, "/")
		if !bb.ValidID(id) {
			return "", false
		}
		return id, true
	}
	rest, ok = strings.CutPrefix(r.URL.Path, "/debug/")
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
