package webdriver

import (
	"net/http"
	"testing"

	bb "github.com/browserd/browserd"
)

// BenchmarkFirstCommand measures what a Selenium user waits for before the first command
// answers: New Session (chromedriver start and attach included) and GET /url. Creating
// the browserd session and quitting are not timed.
//
//	go test -run '^$' -bench FirstCommand -benchtime 10x ./internal/webdriver
func BenchmarkFirstCommand(b *testing.B) {
	hs := newHarness(b, harnessConfig{})
	for b.Loop() {
		b.StopTimer()
		s := hs.create(b, bb.CreateSessionRequest{KeepAlive: true})
		c := hs.signingKeyClient(s.ID)
		b.StartTimer()
		c.newSession(b, nil)
		var url string
		c.cmd(b, http.MethodGet, "/url", nil, &url)
		b.StopTimer()
		if rep := c.do(b, http.MethodDelete, "/session/"+c.session, nil); rep.status != http.StatusOK {
			b.Fatalf("quit: %d %s", rep.status, rep.message)
		}
		b.StartTimer()
	}
}

// BenchmarkCommand measures a small command (GET /url) and a 4 MiB script result through
// browserd and, for comparison, sent to the same chromedriver directly: the difference is
// the relay's cost (authentication with a signing key, routing, reverse proxy).
//
//	go test -run '^$' -bench 'Command$' ./internal/webdriver
func BenchmarkCommand(b *testing.B) {
	hs := newHarness(b, harnessConfig{})
	s := hs.create(b, bb.CreateSessionRequest{KeepAlive: true})
	c := hs.signingKeyClient(s.ID)
	c.newSession(b, nil)
	hs.h.mu.Lock()
	direct := &wdClient{base: "http://" + hs.h.drivers[s.ID].proc.addr, header: http.Header{}, session: c.session}
	hs.h.mu.Unlock()
	for _, cmd := range []struct {
		name string
		run  func(b *testing.B, c *wdClient)
	}{
		{"url", func(b *testing.B, c *wdClient) {
			var url string
			c.cmd(b, http.MethodGet, "/url", nil, &url)
		}},
		{"4MiB", func(b *testing.B, c *wdClient) {
			var big string
			c.script(b, "return 'x'.repeat(4 << 20)", &big)
			b.SetBytes(4 << 20)
		}},
	} {
		for _, via := range []struct {
			name string
			c    *wdClient
		}{{"direct", direct}, {"browserd", c}} {
			b.Run(cmd.name+"/"+via.name, func(b *testing.B) {
				for b.Loop() {
					cmd.run(b, via.c)
				}
			})
		}
	}
}
