package cdpproxy

import (
	"net/http/httptest"
	"testing"
)

// TestSessionOfRequest names the session of CDP connection requests from their
// credentials, for the cluster's forwarding.
func TestSessionOfRequest(t *testing.T) {
	const id = "1a2b3c4d-0000-4000-8000-00000000000a"
	for _, c := range []struct {
		path    string
		upgrade bool
		want    string
	}{
		{"/connect?signingKey=" + id + ".mac", true, id},
		{"/connect?signingKey=" + id + ".mac", false, id},
		{"/?signingKey=" + id + ".mac", true, id},
		{"/?signingKey=" + id + ".mac", false, ""}, // the dashboard's home
		{"/connect?apiKey=bb_x&sessionId=" + id, true, id},
		{"/?apiKey=bb_x&sessionId=" + id, true, id},
		{"/connect?sessionId=" + id, true, ""},
		{"/connect?signingKey=nope.mac", true, ""},
		{"/connect?signingKey=" + id + ".a&signingKey=" + id + ".b", true, ""},
		{"/connect", true, ""},
		{"/v1/sessions/" + id + "?signingKey=" + id + ".mac", true, ""},
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		if c.upgrade {
			r.Header.Set("Upgrade", "websocket")
		}
		got, ok := SessionOfRequest(r)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("SessionOfRequest(%s, upgrade %v) = %q, %v; want %q", c.path, c.upgrade, got, ok, c.want)
		}
	}
}
