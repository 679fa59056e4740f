package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPageLoadEvents measures the CPU browserd spends per page load (a page with
// 50 images and 5 console messages, nothing cached) with the browser's events in the
// logs (on) and without (off): the server runs in this process and Chromium in its own,
// so the process's CPU (getrusage) is the server's, plus the test's client and site,
// which are the same on both sides; load-ms is the wall time from Page.navigate to the
// load event, which the events cost Chromium too. Each load is followed by 250 ms without work, so
// that the log writer's batch (100 ms) falls within the load's sample. Alternate the
// sides in separate runs (docs/PERFORMANCE.md, issue 19):
//
//	go test -c -o /tmp/server.test ./internal/server
//	/tmp/server.test -test.run '^$' -test.bench 'PageLoadEvents/on$' -test.benchtime 30x
//	/tmp/server.test -test.run '^$' -test.bench 'PageLoadEvents/off$' -test.benchtime 30x
func BenchmarkPageLoadEvents(b *testing.B) {
	site := loadSite(b)
	for _, on := range []bool{true, false} {
		b.Run(map[bool]string{true: "on", false: "off"}[on], func(b *testing.B) {
			benchPageLoads(b, site.URL, on)
		})
	}
}

// loadSite serves /?r=N, a page of 50 images and 5 console messages, and the images;
// nothing may be cached.
func loadSite(b *testing.B) *httptest.Server {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasPrefix(r.URL.Path, "/img/") {
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
			return
		}
		var sb strings.Builder
		sb.WriteString(`<!doctype html><title>load</title>`)
		for i := range 50 {
			fmt.Fprintf(&sb, `<img src="/img/%d.png?%s">`, i, r.URL.RawQuery)
		}
		sb.WriteString(`<script>for (let i = 0; i < 5; i++) console.log("message", i)</script>`)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, sb.String())
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	return ts
}

func benchPageLoads(b *testing.B, siteURL string, on bool) {
	srv := startServer(b, b.TempDir(), defaultEnv(), "--log-level", "warn", fmt.Sprintf("--log-browser-events=%v", on))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sess := srv.create(b, testAPIKey, map[string]any{"keepAlive": true})
	cdp := mustDial(b, ctx, sess.ConnectURL)
	sid, err := cdp.attachPage(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := cdp.call(ctx, sid, "Page.enable", nil, nil); err != nil {
		b.Fatal(err)
	}
	var walls []time.Duration
	load := func(n int) {
		start := time.Now()
		if err := cdp.call(ctx, sid, "Page.navigate", map[string]any{"url": fmt.Sprintf("%s/?r=%d", siteURL, n)}, nil); err != nil {
			b.Fatal(err)
		}
		if err := cdp.waitEvent(ctx, sid, "Page.loadEventFired"); err != nil {
			b.Fatal(err)
		}
		walls = append(walls, time.Since(start))
		time.Sleep(250 * time.Millisecond)
	}
	for i := range 3 { // warm up
		load(-1 - i)
	}
	walls = walls[:0]
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var samples []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		before := cpu()
		load(i)
		samples = append(samples, cpu()-before)
	}
	b.StopTimer()
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	q := func(p float64) float64 { return float64(samples[int(p*float64(len(samples)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "cpu-µs-p50/load")
	b.ReportMetric(q(0.9), "cpu-µs-p90/load")
	b.ReportMetric(float64(sum.Microseconds())/float64(len(samples)), "cpu-µs-mean/load")
	slices.Sort(walls)
	b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "load-ms-p50")
	b.ReportMetric(float64(walls[(len(walls)-1)*9/10].Microseconds())/1000, "load-ms-p90")
	var logs []struct{}
	callJSON(b, srv.URL, "GET", "/v1/sessions/"+sess.ID+"/logs", testAPIKey, nil, 200, &logs)
	b.ReportMetric(float64(len(logs))/float64(len(samples)+3), "log-entries/load")
	srv.release(b, testAPIKey, sess.ID)
	srv.stop(b)
}
