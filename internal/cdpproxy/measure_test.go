package cdpproxy

import (
	"context"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestMeasureChrome repeats the relay measurement of research/chromium-limits.md §3d
// against a real Chromium: Runtime.evaluate("1+1") round trips and noise-canvas PNG
// screenshots, direct, through a raw TCP pump and through the gateway, interleaved in
// rounds so that machine noise hits every path alike. It runs only with
// BROWSERD_MEASURE_CHROME=1 and logs a table (go test -run MeasureChrome -v).
func TestMeasureChrome(t *testing.T) {
	if os.Getenv("BROWSERD_MEASURE_CHROME") != "1" {
		t.Skip("set BROWSERD_MEASURE_CHROME=1 to measure")
	}
	const rounds, calls, warmup, shots = 5, 1000, 100, 4
	browser := chrometest.Start(t, bb.LaunchOptions{Viewport: bb.Viewport{Width: 1920, Height: 1080}})
	g := New(Config{})
	g.attach = func(ctx context.Context, c bb.ConnectCredentials) (attached, error) {
		return attached{sessionID: "measure", browserURL: browser.DevToolsURL(), att: newFakeAttachment()}, nil
	}
	h := &harness{g: g, srv: newServer(t, g)}
	u, err := url.Parse(browser.DevToolsURL())
	if err != nil {
		t.Fatal(err)
	}
	pump := newTCPPump(t, u.Host)
	ctx := t.Context()

	type path struct {
		name    string
		cdp     *cdpClient
		session string
		rtt     []time.Duration
		cpu     time.Duration
		shots   []time.Duration
	}
	paths := []*path{
		{name: "direct", cdp: dialCDP(t, browser.DevToolsURL())},
		{name: "tcppump", cdp: dialCDP(t, "ws://"+pump+u.Path)},
		{name: "gateway", cdp: dialCDP(t, h.URL())},
	}
	params := map[string]any{"expression": "1+1"}
	for _, p := range paths {
		s, err := p.cdp.attachPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.session = s
		for range warmup {
			if err := p.cdp.call(ctx, s, "Runtime.evaluate", params, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range rounds {
		for _, p := range paths {
			cpu := cpuTime()
			for range calls {
				start := time.Now()
				if err := p.cdp.call(ctx, p.session, "Runtime.evaluate", params, nil); err != nil {
					t.Fatal(err)
				}
				p.rtt = append(p.rtt, time.Since(start))
			}
			p.cpu += cpuTime() - cpu
		}
	}
	noise := `(() => { const c = document.createElement('canvas'); c.width = 1920; c.height = 1080;
		const x = c.getContext('2d'), d = x.createImageData(1920, 1080);
		for (let i = 0; i < d.data.length; i++) d.data[i] = i % 4 == 3 ? 255 : Math.random() * 256;
		x.putImageData(d, 0, 0); document.body.style.margin = 0; document.body.replaceChildren(c); })()`
	if err := paths[0].cdp.call(ctx, paths[0].session, "Runtime.evaluate", map[string]any{"expression": noise}, nil); err != nil {
		t.Fatal(err)
	}
	var size int
	for range rounds {
		for _, p := range paths {
			for range shots {
				var res struct {
					Data string `json:"data"`
				}
				start := time.Now()
				if err := p.cdp.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
					t.Fatal(err)
				}
				p.shots = append(p.shots, time.Since(start))
				size = len(res.Data)
			}
		}
	}
	direct := paths[0]
	for _, p := range paths {
		slices.Sort(p.rtt)
		slices.Sort(p.shots)
		med, p99 := p.rtt[len(p.rtt)/2], p.rtt[len(p.rtt)*99/100]
		t.Logf("%-8s evaluate median %6.1fµs (+%5.1f) p99 %7.1fµs  process CPU/call %5.1fµs (+%5.1f)  screenshot (%.1f MB) median %5.1fms (%.0f%% of direct)",
			p.name, us(med), us(med-direct.rtt[len(direct.rtt)/2]), us(p99),
			us(p.cpu/time.Duration(len(p.rtt))), us((p.cpu-direct.cpu)/time.Duration(len(p.rtt))),
			float64(size)/1e6, float64(p.shots[len(p.shots)/2])/1e6,
			100*float64(direct.shots[len(direct.shots)/2])/float64(p.shots[len(p.shots)/2]))
	}
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
