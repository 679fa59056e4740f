package browserd_test

import (
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestParseProxyUpstream(t *testing.T) {
	tests := []struct {
		name, raw, user, pass string
		want                  bb.ProxyUpstream
		wantErr               string
	}{
		{name: "http default port", raw: "http://Proxy.example", want: bb.ProxyUpstream{Scheme: "http", Host: "proxy.example:80"}},
		{name: "https", raw: "https://p:8443/", want: bb.ProxyUpstream{Scheme: "https", Host: "p:8443"}},
		{name: "socks5", raw: "socks5://p", want: bb.ProxyUpstream{Scheme: "socks5", Host: "p:1080"}},
		{name: "socks5h", raw: "SOCKS5H://p:9", want: bb.ProxyUpstream{Scheme: "socks5", Host: "p:9"}},
		{name: "ipv6", raw: "http://[::1]:3128", want: bb.ProxyUpstream{Scheme: "http", Host: "[::1]:3128"}},
		{name: "credentials given", raw: "http://p:1", user: "u", pass: "s", want: bb.ProxyUpstream{Scheme: "http", Host: "p:1", Username: "u", Password: "s"}},
		{name: "credentials in url", raw: "http://u:s%40@p:1", want: bb.ProxyUpstream{Scheme: "http", Host: "p:1", Username: "u", Password: "s@"}},
		{name: "given credentials win", raw: "http://a:b@p:1", user: "u", want: bb.ProxyUpstream{Scheme: "http", Host: "p:1", Username: "u"}},
		{name: "no scheme", raw: "p:8080", wantErr: "must be a URL like http://host:port"},
		{name: "no scheme host", raw: "proxy.example", wantErr: "must use the scheme http, https or socks5"},
		{name: "ftp", raw: "ftp://p", wantErr: "must use the scheme"},
		{name: "no host", raw: "http://:80", wantErr: "must name a host"},
		{name: "colon for a host", raw: "socks5://::", wantErr: "must name a host"},
		{name: "IPv6 literal", raw: "socks5://[::1]:9", want: bb.ProxyUpstream{Scheme: "socks5", Host: "[::1]:9"}},
		{name: "path", raw: "http://p/x", wantErr: "must not have a path"},
		{name: "bad port", raw: "http://p:0", wantErr: "must have a port between 1 and 65535"},
		{name: "port text", raw: "http://p:x", wantErr: "must be a URL"},
		{name: "control in password", raw: "http://p", user: "u", pass: "a\r\nb", wantErr: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.ParseProxyUpstream(tt.raw, tt.user, tt.pass)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProxyUpstream(%q) = %+v, %v; want error %q", tt.raw, got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseProxyUpstream(%q) (-got +want):\n%s", tt.raw, diff)
			}
		})
	}
	if s := (bb.ProxyUpstream{Scheme: "http", Host: "p:1", Username: "u", Password: "secret"}).String(); s != "http://p:1" {
		t.Errorf("String() = %q; want no credentials", s)
	}
}

func TestProxyRulesDecodeErrors(t *testing.T) {
	tests := []struct{ name, body, wantMsg string }{
		{name: "server scheme", body: `{"proxies":[{"type":"external","server":"ftp://p"}]}`,
			wantMsg: "body/proxies/0/server must use the scheme http, https or socks5"},
		{name: "server not a url", body: `{"proxies":[{"type":"none"},{"type":"external","server":"http://p:99999"}]}`,
			wantMsg: "body/proxies/1/server must have a port between 1 and 65535"},
		{name: "bad pattern", body: `{"proxies":[{"type":"none","domainPattern":"(a"}]}`,
			wantMsg: "body/proxies/0/domainPattern is not a valid regular expression: missing closing ): `(a`"},
		{name: "long pattern", body: `{"proxies":[{"type":"none","domainPattern":"` + strings.Repeat("a", bb.MaxDomainPatternLength+1) + `"}]}`,
			wantMsg: "body/proxies/0/domainPattern must be at most 1024 characters"},
		{name: "server type", body: `{"proxies":[{"type":"external","server":1}]}`, wantMsg: "body/proxies/0/server must be a string"},
		{name: "pattern type", body: `{"proxies":[{"type":"none","domainPattern":[]}]}`, wantMsg: "body/proxies/0/domainPattern must be a string"},
		{name: "username type", body: `{"proxies":[{"type":"external","server":"http://p","username":true}]}`, wantMsg: "body/proxies/0/username must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bb.DecodeCreateSessionRequest([]byte(tt.body))
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("err = %v; want CodeInvalid", err)
			}
			if got := err.(*bb.Error).Message; got != tt.wantMsg {
				t.Errorf("message = %q; want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestPlanProxies(t *testing.T) {
	decode := func(t *testing.T, body string) bb.CreateSessionRequest {
		t.Helper()
		req, err := bb.DecodeCreateSessionRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	managed := []bb.ProxyUpstream{{Scheme: "http", Host: "m1:80"}, {Scheme: "socks5", Host: "m2:1080"}}
	// The catch-all rule comes first in the request but is tried last.
	req := decode(t, `{"proxies":[
		{"type":"external","server":"http://default:1"},
		{"type":"external","server":"socks5://u:p@shop:2","domainPattern":".*\\.shop\\.test"},
		{"type":"none","domainPattern":"(direct|127\\.0\\.0\\.1)"},
		{"type":"browserbase","domainPattern":"managed\\.test"},
		{"type":"none"}]}`)
	routes, err := bb.PlanProxies(req, managed, 3)
	if err != nil {
		t.Fatal(err)
	}
	plan := bb.NetworkPlan{Routes: routes}
	if !plan.Proxied() {
		t.Error("Proxied() = false")
	}
	for host, want := range map[string]string{
		"a.shop.test":        "socks5://shop:2",
		"A.B.SHOP.TEST.":     "socks5://shop:2",
		"shop.test":          "http://default:1", // the pattern needs a subdomain
		"a.shop.test.evil":   "http://default:1", // anchored at the end
		"evil-a.shop.testx":  "http://default:1",
		"direct":             "direct",
		"127.0.0.1":          "direct",
		"xdirect":            "http://default:1", // anchored at the start
		"managed.test":       "socks5://m2:1080", // pick 3 of 2: the second
		"example.com":        "http://default:1",
		"sub.managed.test.x": "http://default:1",
	} {
		got := "direct"
		if u := plan.Route(host); u != nil {
			got = u.String()
		}
		if got != want {
			t.Errorf("Route(%q) = %s; want %s", host, got, want)
		}
	}
	if u := plan.Route("a.shop.test"); u.Username != "u" || u.Password != "p" {
		t.Errorf("credentials from the URL = %q/%q", u.Username, u.Password)
	}
	// Only the operator's upstreams are trusted to be in private networks.
	if u := plan.Route("managed.test"); !u.Managed {
		t.Error("a type browserbase route's upstream is not Managed")
	}
	if u := plan.Route("a.shop.test"); u.Managed {
		t.Error("a type external route's upstream is Managed")
	}

	// Without a catch-all, unmatched hosts go directly.
	routes, err = bb.PlanProxies(decode(t, `{"proxies":[{"type":"external","server":"http://p","domainPattern":"x"}]}`), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u := (bb.NetworkPlan{Routes: routes}).Route("y"); u != nil {
		t.Errorf("unmatched host routed to %s; want direct", u)
	}
	if (bb.NetworkPlan{Routes: []bb.ProxyRoute{{}}}).Proxied() {
		t.Error("a plan of none rules is Proxied")
	}

	// proxies: true
	routes, err = bb.PlanProxies(decode(t, `{"proxies":true}`), managed, 0)
	if err != nil || len(routes) != 1 || routes[0].Upstream.String() != "http://m1:80" || !routes[0].Upstream.Managed {
		t.Errorf("proxies:true routes = %+v, %v", routes, err)
	}
	for _, body := range []string{`{"proxies":true}`, `{"proxies":[{"type":"none"},{"type":"browserbase"}]}`} {
		_, err := bb.PlanProxies(decode(t, body), nil, 0)
		if bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(err.Error(), "no managed proxies") {
			t.Errorf("%s without managed proxies: %v; want CodeInvalid", body, err)
		}
	}
	if routes, err := bb.PlanProxies(decode(t, `{"proxies":false}`), nil, 0); err != nil || routes != nil {
		t.Errorf("proxies:false = %+v, %v", routes, err)
	}
}

func FuzzParseProxyUpstream(f *testing.F) {
	for _, s := range []string{"http://p:1", "socks5://u:p@[::1]:9", "https://p/", "http://%zz", "http://p:65536", "//p", "http:p"} {
		f.Add(s, "", "")
	}
	f.Fuzz(func(t *testing.T, raw, user, pass string) {
		u, err := bb.ParseProxyUpstream(raw, user, pass)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" {
			t.Fatalf("scheme %q", u.Scheme)
		}
		again, err := bb.ParseProxyUpstream(u.String(), u.Username, u.Password)
		if err != nil || again != u {
			t.Fatalf("reparse of %q = %+v, %v; want %+v", u.String(), again, err, u)
		}
	})
}
