package cluster

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkForward measures what a forward adds to a small API call on loopback: the
// same GET served by the owner directly, and sent to the other node, which verifies
// nothing, signs a hop and proxies it (the owner verifies the hop). Run with
// -bench Forward -benchtime 2000x, alternating, on a quiet machine.
func BenchmarkForward(b *testing.B) {
	a, n := cluster2(b)
	path := "/v1/sessions/" + sessA
	for _, c := range []struct{ name, base string }{{"direct", a.srv.URL}, {"forwarded", n.srv.URL}} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			for b.Loop() {
				resp, err := client.Get(c.base + path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET = %d", resp.StatusCode)
				}
			}
		})
	}
}
