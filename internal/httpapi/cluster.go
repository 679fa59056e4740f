package httpapi

import (
	"net/http"
	"strings"

	bb "github.com/browserd/browserd"
)

// NodeFullHeader marks a 429 (or the 503 of a low disk) that refuses a create because this node is full
// (bb.ErrNodeFull, bb.ErrLowDisk), not because its project is: in a cluster the node
// that placed the create tries another (internal/cluster.NodeFullHeader, the same).
const NodeFullHeader = "X-Browserd-Node-Full"

// SessionOfRequest names the session an API request is about: /v1/sessions/{id} and
// everything under it (logs, recording, downloads, uploads, debug URLs). In a cluster
// the node that does not run the session forwards such a request to the one that does
// (internal/cluster); the id is not checked against any credential here, the owner does.
// Creates and lists (/v1/sessions) are about no one session.
func SessionOfRequest(r *http.Request) (id string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions/")
	if !ok {
		return "", false
	}
	id, _, _ = strings.Cut(rest, "/")
	if !bb.ValidID(id) {
		return "", false
	}
	return id, true
}
