package cluster

import (
	"net/url"
	"testing"
)

// FuzzCheckURL: whatever CheckURL accepts is an http(s) URL with a host and nothing a
// peer's request path could collide with (path, query, fragment, credentials).
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"http://10.0.3.7:8080", "https://[::1]:1/", "http://u@h", "http://h/p?q#f", "h:80", "http://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("CheckURL accepted %q, which does not parse: %v", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("CheckURL accepted %q: %+v", raw, u)
		}
	})
}
