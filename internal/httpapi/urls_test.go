package httpapi

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConnectionURLs(t *testing.T) {
	tests := []struct {
		name                      string
		base                      url.URL
		key                       string
		wantConnect, wantSelenium string
	}{
		{
			name: "http", base: url.URL{Scheme: "http", Host: "localhost:3000"}, key: "id.mac",
			wantConnect: "ws://localhost:3000/connect?signingKey=id.mac", wantSelenium: "http://localhost:3000/webdriver",
		},
		{
			name: "https with prefix", base: url.URL{Scheme: "https", Host: "bb.example.com", Path: "/prefix"}, key: "k",
			wantConnect: "wss://bb.example.com/prefix/connect?signingKey=k", wantSelenium: "https://bb.example.com/prefix/webdriver",
		},
		{
			name: "key is escaped", base: url.URL{Scheme: "https", Host: "h"}, key: "a+b/c=&d",
			wantConnect: "wss://h/connect?signingKey=a%2Bb%2Fc%3D%26d", wantSelenium: "https://h/webdriver",
		},
		{
			name: "IPv6 host", base: url.URL{Scheme: "http", Host: "[::1]:8080"}, key: "k",
			wantConnect: "ws://[::1]:8080/connect?signingKey=k", wantSelenium: "http://[::1]:8080/webdriver",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connect, selenium := connectionURLs(tt.base, tt.key)
			if connect != tt.wantConnect || selenium != tt.wantSelenium {
				t.Errorf("connectionURLs(%v, %q) = %q, %q; want %q, %q",
					tt.base.String(), tt.key, connect, selenium, tt.wantConnect, tt.wantSelenium)
			}
		})
	}
}

func TestPublicBase(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		tls       bool
		header    map[string]string
		want      string
	}{
		{name: "plain request", want: "http://api.local:3000"},
		{name: "TLS request", tls: true, want: "https://api.local:3000"},
		{name: "forwarded https", header: map[string]string{"X-Forwarded-Proto": "https"}, want: "https://api.local:3000"},
		{name: "forwarded list", header: map[string]string{"X-Forwarded-Proto": "HTTPS, http"}, want: "https://api.local:3000"},
		{name: "forwarded http", header: map[string]string{"X-Forwarded-Proto": "http"}, want: "http://api.local:3000"},
		{name: "forwarded junk", header: map[string]string{"X-Forwarded-Proto": "gopher"}, want: "http://api.local:3000"},
		{name: "configured", publicURL: "https://bb.example.com/prefix/", want: "https://bb.example.com/prefix"},
		{name: "configured wins over the request", publicURL: "http://bb.internal:8080", tls: true, want: "http://bb.internal:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Sessions: fakeService{}, PublicURL: tt.publicURL})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://api.local:3000/v1/sessions", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got := s.publicBase(r)
			if got.String() != tt.want {
				t.Errorf("publicBase = %q; want %q", got.String(), tt.want)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	for _, raw := range []string{"bb.example.com", "ftp://h", "https://", "https://h/?x=1", "https://h/#f", "https://u:p@h", "://"} {
		if _, err := New(Config{Sessions: fakeService{}, PublicURL: raw}); err == nil {
			t.Errorf("New(PublicURL %q) = nil error; want one", raw)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without Sessions = nil error; want one")
	}
}

// TestCreateConnectionURLs checks the URLs of a created session, from the configured
// public URL and from the request.
func TestCreateConnectionURLs(t *testing.T) {
	e := newEnv(t, 5, Config{PublicURL: "https://bb.example.com/prefix"})
	v := e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key}, http.StatusCreated)
	key := e.mgr.SigningKey(v["id"].(string))
	want := map[string]any{
		"connectUrl":        "wss://bb.example.com/prefix/connect?signingKey=" + url.QueryEscape(key),
		"seleniumRemoteUrl": "https://bb.example.com/prefix/webdriver",
		"signingKey":        key,
	}
	got := map[string]any{"connectUrl": v["connectUrl"], "seleniumRemoteUrl": v["seleniumRemoteUrl"], "signingKey": v["signingKey"]}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("connection fields mismatch (-got +want):\n%s", diff)
	}

	e = newEnv(t, 5, Config{})
	v = e.mustDo(t, request{method: "POST", path: "/v1/sessions", key: e.key,
		header: map[string]string{"X-Forwarded-Proto": "https"}}, http.StatusCreated)
	key = e.mgr.SigningKey(v["id"].(string))
	if got, want := v["connectUrl"], "wss://example.com/connect?signingKey="+url.QueryEscape(key); got != want {
		t.Errorf("connectUrl = %q; want %q", got, want)
	}
}
