package proxy

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/url"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// TestSessionRootCAs checks that a session's CA certificates (proxySettings.
// caCertificates) make its proxy trust an https upstream proxy whose certificate they
// sign, and that a proxy without them refuses it: the upstream's certificate is
// httptest's own CA, which the system does not trust.
func TestSessionRootCAs(t *testing.T) {
	o := startOrigins(t)
	up := startHTTPUpstream(t, "D", "", "", o, true)
	routes, err := bb.PlanProxies(rules(t, map[string]any{"type": "external", "server": up.url("https")}), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.cert.Raw})
	for _, tt := range []struct {
		name     string
		roots    [][]byte
		wantCode int
	}{
		{name: "without", wantCode: http.StatusBadGateway},
		{name: "with", roots: [][]byte{caPEM}, wantCode: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AllowPrivate: true} // no TLS roots of the operator's: the system's
			p, err := Start("test", bb.NetworkPlan{Routes: routes, RootCAs: tt.roots}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.Addr()}),
				TLSClientConfig: insecure, DisableKeepAlives: true}, Timeout: 20 * time.Second}
			for _, u := range []string{"http://d.test/", "https://d.test/x"} {
				resp, err := client.Get(u)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				if tt.wantCode == http.StatusOK && code != http.StatusOK {
					t.Errorf("GET %s = %d, %v; want 200 through the upstream", u, code, err)
				}
				if tt.wantCode != http.StatusOK && code == http.StatusOK {
					t.Errorf("GET %s = 200; want a refusal (the upstream's CA is not trusted)", u)
				}
			}
		})
	}
}

// TestSessionRootCAsInvalid checks that a plan with an unreadable CA is refused.
func TestSessionRootCAsInvalid(t *testing.T) {
	_, err := New("test", bb.NetworkPlan{RootCAs: [][]byte{[]byte("junk")}}, Config{TLS: &tls.Config{}})
	if bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("New with an unreadable CA = %v; want CodeInvalid", err)
	}
}
