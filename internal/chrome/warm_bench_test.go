package chrome_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// The measurements of docs/PERFORMANCE.md "Warm browsers: refill priority and first
// navigation". They start many real browsers and take minutes; run them alone, e.g.
//
//	BROWSERD_WARM_ROUNDS=10 go test -run '^$' -bench 'Refill|FirstNavigation' -benchtime 1x ./internal/chrome
//
// Each ignores b.N and runs BROWSERD_WARM_ROUNDS rounds [8], the variants alternating
// within a round, and logs p50/p90 per variant.

// warmRounds is the number of rounds of the warm measurements.
func warmRounds(b *testing.B) int {
	if v := os.Getenv("BROWSERD_WARM_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BROWSERD_WARM_ROUNDS=%q", v)
		}
		return n
	}
	return 8
}

// testPage serves a small page with a script that builds some DOM: a navigation that
// costs the renderer some work, as real pages do.
func testPage(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>t</title><div id=d></div><script>
let h='';for(let i=0;i<2000;i++)h+='<p class=c'+(i%7)+'>row '+i+'</p>';
document.getElementById('d').innerHTML=h;</script>`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// cdpTabs is a browser-level CDP connection that reports page loads per session.
type cdpTabs struct {
	c     *cdp.Conn
	loads chan string // session IDs of Page.loadEventFired
}

func dialTabs(b *testing.B, url string) *cdpTabs {
	t := &cdpTabs{loads: make(chan string, 64)}
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	c, err := cdp.Dial(ctx, url, cdp.Options{OnEvent: func(ev cdp.Event) {
		if ev.Method == "Page.loadEventFired" {
			select {
			case t.loads <- ev.SessionID:
			default:
			}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	t.c = c
	return t
}

// attach attaches to target and enables its page events.
func (t *cdpTabs) attach(ctx context.Context, target string) (string, error) {
	var a struct {
		SessionID string `json:"sessionId"`
	}
	if err := t.c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target, "flatten": true}, &a); err != nil {
		return "", err
	}
	return a.SessionID, t.c.Call(ctx, a.SessionID, "Page.enable", nil, nil)
}

// firstPage attaches to the browser's one page.
func (t *cdpTabs) firstPage(ctx context.Context) (string, error) {
	var ts struct {
		TargetInfos []struct {
			TargetID, Type string
		} `json:"targetInfos"`
	}
	if err := t.c.Call(ctx, "", "Target.getTargets", nil, &ts); err != nil {
		return "", err
	}
	for _, ti := range ts.TargetInfos {
		if ti.Type == "page" {
			return t.attach(ctx, ti.TargetID)
		}
	}
	return "", fmt.Errorf("no page in %+v", ts.TargetInfos)
}

// navigate loads url in session's page and returns the time until its load event.
func (t *cdpTabs) navigate(ctx context.Context, session, url string) (time.Duration, error) {
	for len(t.loads) > 0 {
		<-t.loads
	}
	start := time.Now()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := t.c.Call(ctx, session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return 0, err
	}
	if res.ErrorText != "" {
		return 0, fmt.Errorf("navigate %s: %s", url, res.ErrorText)
	}
	for {
		select {
		case s := <-t.loads:
			if s == session {
				return time.Since(start), nil
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// newTab opens about:blank in a new tab, attaches, and loads url there; it returns the
// time of all of it.
func (t *cdpTabs) newTab(ctx context.Context, url string) (time.Duration, error) {
	start := time.Now()
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := t.c.Call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
		return 0, err
	}
	s, err := t.attach(ctx, created.TargetID)
	if err != nil {
		return 0, err
	}
	if _, err := t.navigate(ctx, s, url); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// samples collects durations per variant.
type samples map[string][]time.Duration

func (s samples) report(b *testing.B, what string, order []string) {
	for _, v := range order {
		d := slices.Clone(s[v])
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		p := func(q float64) float64 {
			return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
		}
		slow := 0
		for _, x := range d {
			if x > 500*time.Millisecond {
				slow++
			}
		}
		b.Logf("%-22s %-12s n=%3d p50 %7.1f ms  p90 %7.1f ms  p99 %7.1f ms  min %7.1f  max %7.1f  >500ms %d", what, v, len(d), p(0.5), p(0.9), p(0.99), p(0), p(1), slow)
		b.ReportMetric(p(0.5), strings.ReplaceAll(what, " ", "-")+"-"+v+"-ms-p50")
	}
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkRefillPriority measures what a refill launch costs a live session: a live
// browser (Config.Nice 10) navigates its tab again and again while another browser
// launches (until ready, plus 300 ms of its settling) at normal priority, at niceness 19,
// or at niceness 19 under SCHED_IDLE; "none" launches nothing. It also reports how long
// each refill took to become ready.
func BenchmarkRefillPriority(b *testing.B) {
	l := chrometest.New(b, chrome.Config{Path: chrometest.Chrome(b), RunDir: b.TempDir(), Nice: 10})
	if !l.CanBackground() {
		b.Skip("background launches are ignored here")
	}
	srv := testPage(b)
	ctx := b.Context()
	live, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "live"})
	if err != nil {
		b.Fatal(err)
	}
	defer live.Close(context.Background())
	if err := live.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	live.SetEgress(chrometest.Egress(b))
	tabs := dialTabs(b, live.DevToolsURL())
	defer tabs.c.CloseNow()
	session, err := tabs.firstPage(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Two sites in turn: every navigation swaps the renderer process (site isolation),
	// so a new sandboxed renderer starts each time, as when a user goes to another site.
	urls := []string{strings.Replace(srv.URL, "127.0.0.1", "live-a.test", 1), strings.Replace(srv.URL, "127.0.0.1", "live-b.test", 1)}
	if os.Getenv("BROWSERD_WARM_SAME_SITE") == "1" {
		urls = urls[:1]
	}
	for i := range 3 { // warm the live tab up
		if _, err := tabs.navigate(ctx, session, urls[i%len(urls)]); err != nil {
			b.Fatal(err)
		}
	}
	variants := []string{"none", "normal", "nice19", "idle"}
	if v := os.Getenv("BROWSERD_WARM_VARIANTS"); v != "" {
		variants = strings.Split(v, ",")
	}
	navs, ready := samples{}, samples{}
	b.Logf("load average at start: %s", loadavg())
	n := 0
	for round := range warmRounds(b) {
		for i := range variants {
			v := variants[(i+round)%len(variants)]
			done := make(chan struct{})
			var refill bb.Browser
			if v == "none" {
				go func() { time.Sleep(800 * time.Millisecond); close(done) }()
			} else {
				l.SetBackgroundIdle(v == "idle")
				n++
				start := time.Now()
				refill, err = l.Launch(context.Background(), bb.LaunchOptions{SessionID: "refill" + strconv.Itoa(n), Background: v != "normal"})
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					if err := refill.WaitReady(ctx); err == nil {
						ready[v] = append(ready[v], time.Since(start))
					}
					time.Sleep(300 * time.Millisecond)
					close(done)
				}()
			}
			for running := true; running; {
				select {
				case <-done:
					running = false
					continue
				default:
				}
				d, err := tabs.navigate(ctx, session, urls[len(navs[v])%len(urls)])
				if err != nil {
					b.Fatal(err)
				}
				navs[v] = append(navs[v], d)
			}
			if refill != nil {
				if err := refill.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	b.Logf("load average at end: %s", loadavg())
	navs.report(b, "live navigation", variants)
	ready.report(b, "refill spawn→ready", variants)
}

// warmTab opens url in a new tab, waits for its load event (an error page's too) and
// closes the tab.
func warmTab(ctx context.Context, wsURL, url string) error {
	c, err := cdp.Dial(ctx, wsURL, cdp.Options{})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": url}, &created); err != nil {
		return err
	}
	var a struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &a); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var res struct {
			Result struct{ Value string } `json:"result"`
		}
		err := c.Call(ctx, a.SessionID, "Runtime.evaluate", map[string]any{"expression": "location.href + ' ' + document.readyState", "returnByValue": true}, &res)
		if err == nil && strings.HasSuffix(res.Result.Value, " complete") && !strings.HasPrefix(res.Result.Value, "about:blank") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c.Call(ctx, "", "Target.closeTarget", map[string]any{"targetId": created.TargetID}, nil)
}

// BenchmarkFirstNavigation measures what a warm browser's first navigations take: the
// initial tab's (Page.navigate to a local page until its load event) and a new tab's
// (Target.createTarget about:blank, attach, navigate, load), after the browser sat idle
// for a while as a pooled browser does, with Chromium's spare renderer off (browserd's
// lean default) and on, through the Launcher and as bare Chromium (BareLauncher). It
// also reports the idle browser's PSS.
func BenchmarkFirstNavigation(b *testing.B) {
	path := chrometest.Chrome(b)
	l := chrometest.New(b, chrome.Config{Path: path, RunDir: b.TempDir(), Nice: 10})
	srv := testPage(b)
	ctx := b.Context()
	ref, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "ref"})
	if err != nil {
		b.Fatal(err)
	}
	if err := ref.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	bareDir := filepath.Join(b.TempDir(), "bare")
	bl, err := chrome.NewBareLauncher(ref.PID(), bareDir)
	if err != nil {
		b.Fatal(err)
	}
	if err := ref.Close(ctx); err != nil {
		b.Fatal(err)
	}
	settle := 1500 * time.Millisecond
	variants := []string{"lean", "spare", "bare-lean", "bare-spare", "lean-warm", "lean-warmnet"}
	if v := os.Getenv("BROWSERD_WARM_VARIANTS"); v != "" {
		variants = strings.Split(v, ",")
	}
	first, second, pss, procs := samples{}, samples{}, map[string][]int64{}, map[string][]int64{}
	b.Logf("load average at start: %s", loadavg())
	n := 0
	for round := range warmRounds(b) {
		for i := range variants {
			v := variants[(i+round)%len(variants)]
			n++
			var wsURL string
			var pgid int
			var stop func()
			urls := []string{strings.Replace(srv.URL, "127.0.0.1", "a.test", 1), strings.Replace(srv.URL, "127.0.0.1", "b.test", 1)}
			if kind, ok := strings.CutPrefix(v, "bare-"); ok {
				bl.SetSpareRenderer(kind == "spare")
				bare, err := bl.Launch(ctx)
				if err != nil {
					b.Fatal(err)
				}
				wsURL, pgid = bare.DevToolsURL(), bare.PGID()
				stop = func() {
					if err := bl.Stop(context.Background(), bare); err != nil {
						b.Fatal(err)
					}
				}
				urls = []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)}
			} else {
				l.SetSpareRenderer(strings.HasPrefix(v, "spare"))
				br, err := l.Launch(context.Background(), bb.LaunchOptions{SessionID: "fn" + strconv.Itoa(n)})
				if err != nil {
					b.Fatal(err)
				}
				if err := br.WaitReady(ctx); err != nil {
					b.Fatal(err)
				}
				if _, warm, ok := strings.Cut(v, "-warm"); ok {
					// A warm-up tab, closed again: a data: page (renderer, Blink,
					// fonts) or an http page with no egress yet (network stack, cache).
					u := "data:text/html,<p>warm</p><script>document.body.append('x')</script>"
					if warm == "net" {
						u = "http://warm.test/"
					}
					if err := warmTab(ctx, br.DevToolsURL(), u); err != nil {
						b.Fatal(err)
					}
				}
				br.SetEgress(chrometest.Egress(b))
				wsURL, pgid = br.DevToolsURL(), br.PID()
				stop = func() {
					if err := br.Close(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
			time.Sleep(settle)
			if m, err := chrome.GroupPSS(pgid); err == nil {
				pss[v] = append(pss[v], m)
			}
			procs[v] = append(procs[v], int64(len(renderers(group(b, pgid)))))
			tabs := dialTabs(b, wsURL)
			session, err := tabs.firstPage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			d, err := tabs.navigate(ctx, session, urls[0])
			if err != nil {
				b.Fatal(err)
			}
			first[v] = append(first[v], d)
			time.Sleep(500 * time.Millisecond)
			d, err = tabs.newTab(ctx, urls[1])
			if err != nil {
				b.Fatal(err)
			}
			second[v] = append(second[v], d)
			tabs.c.CloseNow()
			stop()
		}
	}
	b.Logf("load average at end: %s", loadavg())
	first.report(b, "first navigation", variants)
	second.report(b, "new tab + navigation", variants)
	for _, v := range variants {
		m := slices.Clone(pss[v])
		slices.Sort(m)
		if len(m) > 0 {
			b.Logf("%-22s %-12s n=%3d p50 %5d MiB", "idle PSS", v, len(m), m[len(m)/2]>>20)
		}
		b.Logf("%-22s %-12s %v", "idle renderers", v, procs[v])
	}
	chrometest.AssertNoLeaks(b, bareDir)
}
