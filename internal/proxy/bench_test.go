package proxy

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	bb "github.com/browserd/browserd"
)

// The added latency of the session proxy per request is the difference between a path
// through it and the same path without it:
//
//	go test -run '^$' -bench . -benchtime 2000x ./internal/proxy
//
// plain/* reuse connections (keep-alive, as Chromium does); tunnel/* open a new TLS
// connection per request (CONNECT through the proxy, then TLS to the origin).
func BenchmarkProxy(b *testing.B) {
	o := startOrigins(b)
	up := startHTTPUpstream(b, "A", "", "", o, false)
	routes, err := bb.PlanProxies(rulesB(b, up.url("http")), nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Start("bench", bb.NetworkPlan{Routes: routes}, Config{AllowPrivate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	via := func(proxyAddr string, keepAlive bool) *http.Client {
		t := &http.Transport{TLSClientConfig: insecure, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}
		if proxyAddr != "" {
			t.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr})
		}
		return &http.Client{Transport: t}
	}
	plainOrigin := "http://" + o.plain + "/x"
	tlsOrigin := "https://" + o.tls + "/x"
	cases := []struct {
		name, url string
		client    *http.Client
	}{
		{"plain/direct", plainOrigin, via("", true)},
		{"plain/proxy-direct-route", plainOrigin, via(p.Addr(), true)},
		{"plain/upstream-only", "http://x.test/x", via(up.ln.Addr().String(), true)},
		{"plain/proxy-then-upstream", "http://x.test/x", via(p.Addr(), true)},
		{"tunnel/direct", tlsOrigin, via("", false)},
		{"tunnel/proxy-direct-route", tlsOrigin, via(p.Addr(), false)},
		{"tunnel/upstream-only", "https://x.test/x", via(up.ln.Addr().String(), false)},
		{"tunnel/proxy-then-upstream", "https://x.test/x", via(p.Addr(), false)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.client.Get(c.url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

func rulesB(b *testing.B, server string) bb.CreateSessionRequest {
	b.Helper()
	req, err := bb.DecodeCreateSessionRequest([]byte(`{"proxies":[{"type":"none","domainPattern":"127\\.0\\.0\\.1"},{"type":"external","server":"` + server + `"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	return req
}
