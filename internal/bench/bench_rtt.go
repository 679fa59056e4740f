package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome"
)

type benchCDPResult struct {
	direct, tcp, gw     benchPct  // Runtime.evaluate round trip, µs
	addedTCP, addedGW   []float64 // per round: p50 minus direct's p50, µs
	addedRatio          []float64 // per round: addedGW / addedTCP
	cpuClient           []float64 // per round: process CPU per direct round trip, µs
	cpuTCP, cpuRelay    []float64 // per round: process CPU per round trip minus direct's, µs
	gwNoLog             benchPct  // the same through the gateway of a logSession:false session
	cpuRelayNoLog       []float64 // its process CPU per round trip minus direct's, µs
	shotMB              float64   // size of one screenshot message, MB
	shotPx              string    // its clip, WxH
	shotDirect, shotGW  []float64 // per round, MB/s
	shotTCP, shotRatio  []float64 // shotRatio: gateway / direct, %
	product, protocol   string
	calls, shotsPerPath int
}

// benchCPU returns the CPU time (user + system) this process has used.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPath is one way to the same browser.
type benchPath struct {
	name string
	cdp  *benchCDP
	sid  string
}

// cdpPhase measures Runtime.evaluate round trips to one session's browser directly,
// through a plain TCP pass-through and through the gateway (the session's connectUrl),
// interleaved; the process CPU used by each path's loop, minus direct's, is the relay's
// (the bench client is the same on every path). Then full-page PNG screenshots of a
// tall page, the same way.
func (r *benchRun) cdpPhase(ctx context.Context) error {
	res := &r.cdp
	res.calls, res.shotsPerPath = r.cfg.rttCalls, r.cfg.shots
	s, _, done, err := r.measured(ctx, "cdp", `{}`)
	if err != nil {
		return err
	}
	defer done()
	// A second session without CDP logs separates the relay from the log writer (whose
	// CPU, in this process, counts as the relay's on the default path).
	s2, _, done2, err := r.measured(ctx, "cdp (no log)", `{"browserSettings":{"logSession":false}}`)
	if err != nil {
		return err
	}
	defer done2()
	direct, err := benchDevToolsURL(ctx, s.ConnectURL)
	if err != nil {
		return err
	}
	pump, err := startBenchPump(direct)
	if err != nil {
		return err
	}
	defer pump.close()
	paths := []*benchPath{{name: "direct"}, {name: "tcp"}, {name: "gateway"}, {name: "gateway-nolog"}}
	for i, u := range []string{direct, pump.url(direct), s.ConnectURL, s2.ConnectURL} {
		c, err := benchDial(ctx, u)
		if err != nil {
			return fmt.Errorf("%s: %w", paths[i].name, err)
		}
		defer c.close()
		if paths[i].sid, err = c.attachPage(ctx); err != nil {
			return fmt.Errorf("%s: %w", paths[i].name, err)
		}
		paths[i].cdp = c
	}
	var version struct {
		Product         string `json:"product"`
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := paths[0].cdp.call(ctx, "", "Browser.getVersion", nil, &version); err != nil {
		return err
	}
	res.product, res.protocol = version.Product, version.ProtocolVersion

	eval := []byte(`{"expression":"1+1"}`)
	for _, p := range paths {
		for range r.cfg.rttWarmup {
			if _, err := p.cdp.callRaw(ctx, p.sid, "Runtime.evaluate", eval); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	for round := range r.cfg.rounds {
		rtt := map[string][]time.Duration{}
		cpu := map[string]time.Duration{}
		for i := range paths {
			p := paths[(round+i)%len(paths)] // rotate the order: drift hits every path alike
			samples := make([]time.Duration, 0, r.cfg.rttCalls)
			c0 := benchCPU()
			for range r.cfg.rttCalls {
				t := time.Now()
				if _, err := p.cdp.callRaw(ctx, p.sid, "Runtime.evaluate", eval); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				samples = append(samples, time.Since(t))
			}
			cpu[p.name] = benchCPU() - c0
			rtt[p.name] = samples
		}
		res.direct.add(rtt["direct"], time.Microsecond)
		res.tcp.add(rtt["tcp"], time.Microsecond)
		res.gw.add(rtt["gateway"], time.Microsecond)
		res.gwNoLog.add(rtt["gateway-nolog"], time.Microsecond)
		d50 := benchPercentile(rtt["direct"], 0.5, time.Microsecond)
		t50 := benchPercentile(rtt["tcp"], 0.5, time.Microsecond)
		g50 := benchPercentile(rtt["gateway"], 0.5, time.Microsecond)
		res.addedTCP = append(res.addedTCP, t50-d50)
		res.addedGW = append(res.addedGW, g50-d50)
		res.addedRatio = append(res.addedRatio, (g50-d50)/(t50-d50))
		n := float64(r.cfg.rttCalls)
		perCall := func(d time.Duration) float64 { return float64(d) / 1e3 / n }
		res.cpuClient = append(res.cpuClient, perCall(cpu["direct"]))
		res.cpuTCP = append(res.cpuTCP, perCall(cpu["tcp"]-cpu["direct"]))
		res.cpuRelay = append(res.cpuRelay, perCall(cpu["gateway"]-cpu["direct"]))
		res.cpuRelayNoLog = append(res.cpuRelayNoLog, perCall(cpu["gateway-nolog"]-cpu["direct"]))
		r.logf("cdp round %d: evaluate p50 direct %.0f µs, tcp %.0f µs, gateway %.0f µs; relay cpu %.1f µs/rt (%.1f without logs)",
			round+1, d50, t50, g50, res.cpuRelay[len(res.cpuRelay)-1], res.cpuRelayNoLog[len(res.cpuRelayNoLog)-1])
	}
	return r.screenshots(ctx, paths[:3]) // the same browser on every path
}

// screenshots measures full-page PNG screenshots of the tall page on every path.
func (r *benchRun) screenshots(ctx context.Context, paths []*benchPath) error {
	res := &r.cdp
	if err := paths[0].cdp.navigate(ctx, paths[0].sid, r.pages.tall()); err != nil {
		return err
	}
	var metrics struct {
		Content struct {
			Width  float64 `json:"width"`
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := paths[0].cdp.call(ctx, paths[0].sid, "Page.getLayoutMetrics", nil, &metrics); err != nil {
		return err
	}
	w, h := metrics.Content.Width, metrics.Content.Height
	res.shotPx = fmt.Sprintf("%.0f×%.0f", w, h)
	params, err := json.Marshal(map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
	if err != nil {
		return err
	}
	for _, p := range paths { // warm-up: the first capture lays the page out again
		if _, err := p.cdp.callRaw(ctx, p.sid, "Page.captureScreenshot", params); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	for round := range r.cfg.rounds {
		rate := map[string]float64{}
		for i := range paths {
			p := paths[(round+i)%len(paths)]
			var size int
			t := time.Now()
			for range r.cfg.shots {
				msg, err := p.cdp.callRaw(ctx, p.sid, "Page.captureScreenshot", params)
				if err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				if !bytes.Contains(msg[:min(len(msg), 64)], []byte(`"data":"iVBOR`)) {
					return fmt.Errorf("%s: screenshot answer is not a PNG: %.100s", p.name, msg)
				}
				size += len(msg)
			}
			rate[p.name] = float64(size) / 1e6 / time.Since(t).Seconds()
			res.shotMB = float64(size) / 1e6 / float64(r.cfg.shots)
		}
		res.shotDirect = append(res.shotDirect, rate["direct"])
		res.shotTCP = append(res.shotTCP, rate["tcp"])
		res.shotGW = append(res.shotGW, rate["gateway"])
		res.shotRatio = append(res.shotRatio, 100*rate["gateway"]/rate["direct"])
		r.logf("screenshot round %d: %.1f MB, direct %.1f MB/s, gateway %.1f MB/s", round+1,
			res.shotMB, rate["direct"], rate["gateway"])
	}
	return nil
}

// benchDevToolsURL returns the browser-level DevTools websocket of the session behind
// connectURL as the server reaches it: Chromium listens inside its sandbox's network, and
// the server through a loopback forwarder of its own, found among this process's
// listeners as the one whose /json/list has the session's page.
func benchDevToolsURL(ctx context.Context, connectURL string) (string, error) {
	c, err := benchDial(ctx, connectURL)
	if err != nil {
		return "", err
	}
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	err = c.call(ctx, "", "Target.getTargets", nil, &targets)
	c.close()
	if err != nil {
		return "", err
	}
	var page string
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			page = ti.TargetID
		}
	}
	if page == "" {
		return "", errors.New("the session has no page")
	}
	ports, err := chrome.OwnLoopbackPorts()
	if err != nil {
		return "", err
	}
	for _, port := range ports {
		base := "http://127.0.0.1:" + port
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		list, err := cdp.List(lctx, base)
		cancel()
		if err != nil {
			continue // another listener of this process
		}
		for _, t := range list {
			if t.ID != page {
				continue
			}
			vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := cdp.Version(vctx, base)
			cancel()
			if err != nil {
				return "", err
			}
			return v.WebSocketDebuggerURL, nil
		}
	}
	return "", fmt.Errorf("no DevTools forwarder of this process lists page %s", page)
}

// benchPump is a plain TCP pass-through: the cheapest possible relay, as a baseline.
type benchPump struct {
	ln     net.Listener
	target string // host:port
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startBenchPump(wsURL string) (*benchPump, error) {
	hostPort, _, _ := strings.Cut(strings.TrimPrefix(wsURL, "ws://"), "/")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &benchPump{ln: ln, target: hostPort}
	p.wg.Go(p.serve) // ends when close closes the listener
	return p, nil
}

// url returns wsURL with the pump's address in place of the browser's.
func (p *benchPump) url(wsURL string) string {
	return strings.Replace(wsURL, p.target, p.ln.Addr().String(), 1)
}

func (p *benchPump) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close() // the client sees the refusal as EOF
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close() // closing: nobody will use them
			d.Close()
			return
		}
		p.conns = append(p.conns, c, d)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)        // ends when either side closes
			dst.(*net.TCPConn).CloseWrite() // half-close; an error means it is closed already
		}
		p.wg.Go(func() { pipe(d, c) })
		p.wg.Go(func() { pipe(c, d) })
	}
}

func (p *benchPump) close() {
	p.ln.Close() // ends serve; Accept's error is expected
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close() // ends the copies
	}
	p.mu.Unlock()
	p.wg.Wait()
}
