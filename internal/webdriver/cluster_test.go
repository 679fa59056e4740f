package webdriver

import (
	"net/http/httptest"
	"testing"
)

// TestSessionOfRequest names the browserd session of WebDriver requests from their
// credentials, for the cluster's forwarding.
func TestSessionOfRequest(t *testing.T) {
	f := newAuthSessions(t)
	h, err := New(Config{Sessions: f, Chromedriver: "/nonexistent/chromedriver"})
	if err != nil {
		t.Fatal(err)
	}
	id := f.sid
	for _, c := range []struct {
		path    string
		headers map[string]string
		want    string
	}{
		{"/webdriver/session", map[string]string{"X-Bb-Signing-Key": f.signer.SigningKey(id)}, id},
		{"/webdriver/session/abc/url", map[string]string{"X-Bb-Signing-Key": id + ".forged"}, id}, // the owner checks it
		{"/webdriver/session/abc/url", map[string]string{"X-Bb-Api-Key": f.key, "Session-Id": id}, id},
		{"/webdriver/session", map[string]string{"X-Bb-Api-Key": f.key}, ""},
		{"/webdriver/session", map[string]string{"X-Bb-Signing-Key": "not-an-id.x"}, ""},
		{"/webdriver/session", nil, ""},
		{"/webdriverx/session", map[string]string{"Session-Id": id, "X-Bb-Api-Key": f.key}, ""},
		{"/v1/sessions/" + id, map[string]string{"Session-Id": id, "X-Bb-Api-Key": f.key}, ""},
	} {
		r := httptest.NewRequest("GET", c.path, nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		got, ok := h.SessionOfRequest(r)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("SessionOfRequest(%s %v) = %q, %v; want %q", c.path, c.headers, got, ok, c.want)
		}
	}
}
