package cdpproxy

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// echo writes msg and reads the answer into buf, without allocating a message.
func echo(b *testing.B, c *websocket.Conn, typ websocket.MessageType, msg, buf []byte) {
	ctx := context.Background()
	if err := c.Write(ctx, typ, msg); err != nil {
		b.Fatal(err)
	}
	_, r, err := c.Reader(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		b.Fatal(err)
	}
	if _, err := r.Read(buf[:1]); err != io.EOF {
		b.Fatalf("answer longer than %d bytes: %v", len(buf), err)
	}
}

// benchEcho measures echoes through the fake CDP server, directly and through the
// gateway. cpu-ns/op is the whole process's CPU (client, fake server and relay); the
// gateway's minus direct's is the relay's CPU per round trip.
// tcppump is the baseline of research/chromium-limits.md §3d: a raw TCP byte pump.
func benchEcho(b *testing.B, typ websocket.MessageType, msg []byte) {
	h := newHarness(b, Config{})
	pump := newTCPPump(b, h.cdp.srv.Listener.Addr().String())
	for _, bc := range []struct{ name, url string }{
		{"direct", h.cdp.URL()},
		{"tcppump", "ws://" + pump + "/devtools/browser/fake"},
		{"gateway", h.URL()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := dial(b, bc.url)
			buf := make([]byte, len(msg))
			echo(b, c, typ, msg, buf) // warm up
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				echo(b, c, typ, msg, buf)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func BenchmarkRelayRoundTrip(b *testing.B) {
	msg := []byte(`{"id":12,"method":"Runtime.evaluate","params":{"expression":"1+1","returnByValue":true},"sessionId":"8F1C2B3D4E5F60718293A4B5C6D7E8F9"}`)
	benchEcho(b, websocket.MessageText, msg)
}

func BenchmarkRelayLarge(b *testing.B) {
	msg := []byte(`{"id":1,"result":{"data":"` + strings.Repeat("iVBORw0KGgo", 4<<20/11) + `"}}`)
	benchEcho(b, websocket.MessageText, msg)
}

// BenchmarkChrome compares CDP calls to a real Chromium, directly and through the
// gateway: Runtime.evaluate("1+1") and a screenshot of a noise canvas (the worst case
// of research/chromium-limits.md §3d, ≈4 MB). cpu-ns/op counts this process only
// (client and relay), not Chromium. It skips when no Chromium is found.
func BenchmarkChrome(b *testing.B) {
	browser := chrometest.Start(b, bb.LaunchOptions{Viewport: bb.Viewport{Width: 1920, Height: 1080}})
	g := New(Config{})
	g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		return attached{sessionID: "bench", browserURL: browser.DevToolsURL(), att: newFakeAttachment()}, nil
	}
	h := &harness{g: g}
	h.srv = newServer(b, g)
	ctx := context.Background()
	for _, path := range []struct{ name, url string }{{"direct", browser.DevToolsURL()}, {"gateway", h.URL()}} {
		cdp := dialCDP(b, path.url)
		sessionID, err := cdp.attachPage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("evaluate/"+path.name, func(b *testing.B) {
			params := map[string]any{"expression": "1+1"}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if err := cdp.call(ctx, sessionID, "Runtime.evaluate", params, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
		noise := `(() => { const c = document.createElement('canvas'); c.width = 1920; c.height = 1080;
			const x = c.getContext('2d'), d = x.createImageData(1920, 1080);
			for (let i = 0; i < d.data.length; i++) d.data[i] = i % 4 == 3 ? 255 : Math.random() * 256;
			x.putImageData(d, 0, 0); document.body.style.margin = 0; document.body.replaceChildren(c); })()`
		if err := cdp.call(ctx, sessionID, "Runtime.evaluate", map[string]any{"expression": noise}, nil); err != nil {
			b.Fatal(err)
		}
		b.Run("screenshot/"+path.name, func(b *testing.B) {
			var res struct {
				Data string `json:"data"`
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := cdp.call(ctx, sessionID, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(res.Data)))
		})
	}
}

// newTCPPump starts a TCP proxy to target that copies bytes both ways, and returns its
// address.
func newTCPPump(b testing.TB, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{})
				go func() { _, _ = io.Copy(s, c); s.Close(); close(done) }()
				_, _ = io.Copy(c, s)
				c.Close()
				<-done
			})
		}
	})
	return ln.Addr().String()
}
