package httpapi

import (
	"net/http/httptest"
	"testing"

	bb "github.com/browserd/browserd"
)

// TestSessionOfRequest names the session of API requests from their paths, for the
// cluster's forwarding.
func TestSessionOfRequest(t *testing.T) {
	const id = "1a2b3c4d-0000-4000-8000-00000000000a"
	for path, want := range map[string]string{
		"/v1/sessions/" + id:                    id,
		"/v1/sessions/" + id + "/logs":          id,
		"/v1/sessions/" + id + "/downloads":     id,
		"/v1/sessions/" + id + "/uploads":       id,
		"/v1/sessions/" + id + "/debug":         id,
		"/v1/sessions/" + id + "/recording?x=1": id,
		"/v1/sessions":                          "",
		"/v1/sessions/":                         "",
		"/v1/sessions/not-an-id/logs":           "",
		"/v1/projects/" + id:                    "",
		"/v1/contexts/" + id:                    "",
	} {
		got, ok := SessionOfRequest(httptest.NewRequest("GET", path, nil))
		if got != want || ok != (want != "") {
			t.Errorf("SessionOfRequest(%s) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

// TestNodeFullHeader: a create refused because the node is full (or its disk low) says
// so, for the cluster's placement; the project's concurrency limit does not.
func TestNodeFullHeader(t *testing.T) {
	s, err := New(Config{Sessions: fakeService{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&bb.Error{Code: bb.CodeLimit, Err: bb.ErrNodeFull, Message: "at capacity"}, true},
		{&bb.Error{Code: bb.CodeUnavailable, Retry: true, Err: bb.ErrLowDisk, Message: "low disk"}, true},
		{bb.ConcurrencyLimitError(3, 3), false},
		{bb.Errorf(bb.CodeUnavailable, "shutting down"), false},
	} {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest("POST", "/v1/sessions", nil), c.err)
		if got := w.Header().Get(NodeFullHeader) == "1"; got != c.want {
			t.Errorf("%v: %s = %v; want %v", c.err, NodeFullHeader, got, c.want)
		}
	}
}
