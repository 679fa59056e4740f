package liveview

import (
	"net/http/httptest"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// TestSessionOfRequest names the session of live view and DevTools requests from their
// tokens, for the cluster's forwarding.
func TestSessionOfRequest(t *testing.T) {
	s, err := bb.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	id := bb.NewID()
	tok := s.LiveToken(bb.LiveGrant{SessionID: id, Expires: time.Now().Add(time.Hour)})
	for path, want := range map[string]string{
		"/debug/" + tok + "/view":                       id,
		"/debug/" + tok + "/screencast":                 id,
		"/debug/" + tok + "/devtools/devtools/page/ABC": id,
		"/debug/lv1." + id + ".1.rw.forged/view":        id, // the owner checks the token
		"/debug/lv2." + id + ".1.rw.x/view":             "",
		"/debug/lv1.not-an-id.1.rw.x/view":              "",
		"/debug/" + id + "/view":                        "",
		"/ui/sessions/" + id:                            id, // the owner has its live view
		"/ui/sessions/" + id + "/release":               id,
		"/ui/sessions/" + id + "/logs":                  id,
		"/ui/sessions/" + id + "/inspector":             id,
		"/ui/api/sessions/" + id + "/logs":              id, // the inspector's data
		"/ui/api/sessions/" + id + "/replays/0/s.ts":    id,
		"/ui/api/sessions/x/logs":                       "",
		"/ui/api/project":                               "",
		"/ui/sessions/not-an-id":                        "",
		"/ui/sessions/":                                 "",
		"/ui/":                                          "", // the rest is served where it lands
		"/v1/sessions/" + id:                            "",
	} {
		got, ok := SessionOfRequest(httptest.NewRequest("GET", path, nil))
		if got != want || ok != (want != "") {
			t.Errorf("SessionOfRequest(%s) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

func FuzzSessionOfRequest(f *testing.F) {
	f.Add("/debug/lv1.1a2b3c4d-0000-4000-8000-00000000000a.1.rw.mac/view")
	f.Add("/debug/lv1..../view")
	f.Add("/debug/")
	f.Fuzz(func(t *testing.T, path string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		id, ok := SessionOfRequest(r)
		if ok != bb.ValidID(id) || (!ok && id != "") {
			t.Fatalf("SessionOfRequest(%q) = %q, %v", path, id, ok)
		}
	})
}
