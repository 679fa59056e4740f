package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

// These tests dial loopback test servers directly: the address policy is
// internal/proxy's, tested there and, wired to this package, in internal/server
// (fetch_test.go), where private addresses are refused.

// dialLog is a Dial that connects directly, refuses the addresses in refuse with a
// CodeForbidden error (as the server's policy does), and records every call.
type dialLog struct {
	mu     sync.Mutex
	refuse map[string]bool // host:port
	calls  []string        // "direct host:port" or "via UPSTREAM host:port"
}

func (d *dialLog) dial(ctx context.Context, u *bb.ProxyUpstream, addr string) (net.Conn, error) {
	d.mu.Lock()
	route := "direct"
	if u != nil {
		route = "via " + u.Host
	}
	d.calls = append(d.calls, route+" "+addr)
	refused := d.refuse[addr]
	d.mu.Unlock()
	if refused {
		return nil, bb.Errorf(bb.CodeForbidden, "%s is refused by the test policy", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

func (d *dialLog) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func newFetcher(t *testing.T, cfg Config) (*Fetcher, *dialLog) {
	t.Helper()
	d := &dialLog{refuse: map[string]bool{}}
	if cfg.Dial == nil {
		cfg.Dial = d.dial
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, d
}

func mustReq(t *testing.T, body string) bb.FetchRequest {
	t.Helper()
	req, err := bb.DecodeFetchRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeFetchRequest(%s): %v", body, err)
	}
	return req
}

// site is a test site with the pages the tests fetch.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-UA", r.UserAgent())
		io.WriteString(w, `<html><head><title>T</title></head><body><h1>Hello</h1><p>Some <b>bold</b> text and <a href="/next?x=1">a link</a>.</p></body></html>`)
	})
	mux.HandleFunc("/latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=ISO-8859-1")
		w.Write([]byte("caf\xe9"))
	})
	mux.HandleFunc("/meta-latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><meta charset=\"iso-8859-1\"></head><body><p>na\xefve</p></body></html>"))
	})
	mux.HandleFunc("/png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG\r\n\x1a\n\x00\x01\xff"))
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "# already *markdown*")
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"a":1}`)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nothing here", http.StatusNotFound)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { // with a Content-Length
		w.Write(make([]byte, 2048))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) { // no Content-Length
		for range 8 {
			w.Write(make([]byte, 512))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/gzip-bomb", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(make([]byte, 1<<20)) // 1 MiB of zeros, about 1 KiB compressed
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		w.Write(buf.Bytes())
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { // slowloris: a byte at a time
		w.Header().Set("Content-Type", "text/plain")
		for range 100 {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestFetchRaw(t *testing.T) {
	ts := site(t)
	f, _ := newFetcher(t, Config{UserAgent: "test-agent"})
	res, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/page#frag"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.ID == "" || res.StatusCode != 200 || res.Encoding != "utf-8" || res.ContentType != "text/html; charset=utf-8" {
		t.Errorf("result %+v", res)
	}
	if !strings.HasPrefix(res.Content, "<html><head><title>T</title>") {
		t.Errorf("content %q", res.Content)
	}
	if got := res.Headers["set-cookie"]; got != "a=1, b=2" {
		t.Errorf("set-cookie %q; want the values joined", got)
	}
	if got := res.Headers["x-ua"]; got != "test-agent" {
		t.Errorf("user agent sent %q", got)
	}
	for k := range res.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower-case", k)
		}
	}
}

func TestFetchContent(t *testing.T) {
	ts := site(t)
	f, _ := newFetcher(t, Config{})
	tests := []struct {
		path, format string
		wantContent  string // exact, or with a * prefix: contained
		wantEncoding string
		wantStatus   int
		wantCode     bb.ErrorCode
	}{
		{path: "/latin1", format: "raw", wantContent: "café", wantEncoding: "utf-8", wantStatus: 200},
		{path: "/meta-latin1", format: "raw", wantContent: "*naïve", wantEncoding: "utf-8", wantStatus: 200},
		{path: "/png", format: "raw", wantContent: "iVBORw0KGgoAAf8=", wantEncoding: "base64", wantStatus: 200},
		{path: "/json", format: "raw", wantContent: `{"a":1}`, wantEncoding: "utf-8", wantStatus: 200},
		{path: "/missing", format: "raw", wantContent: "nothing here\n", wantEncoding: "utf-8", wantStatus: 404},
		{path: "/page", format: "markdown", wantContent: "# Hello\n\nSome **bold** text and [a link](" + ts.URL + "/next?x=1).", wantEncoding: "utf-8", wantStatus: 200},
		{path: "/meta-latin1", format: "markdown", wantContent: "naïve", wantEncoding: "utf-8", wantStatus: 200},
		{path: "/text", format: "markdown", wantContent: "# already *markdown*", wantEncoding: "utf-8", wantStatus: 200},
		{path: "/png", format: "markdown", wantCode: bb.CodeUnprocessable},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.format, func(t *testing.T) {
			res, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+tt.path+`","format":"`+tt.format+`"}`))
			if tt.wantCode != "" {
				if bb.CodeOf(err) != tt.wantCode {
					t.Fatalf("Fetch = %v; want %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := strings.CutPrefix(tt.wantContent, "*"); ok {
				if !strings.Contains(res.Content, want) {
					t.Errorf("content %q does not contain %q", res.Content, want)
				}
			} else if res.Content != tt.wantContent {
				t.Errorf("content %q; want %q", res.Content, tt.wantContent)
			}
			if res.Encoding != tt.wantEncoding || res.StatusCode != tt.wantStatus {
				t.Errorf("encoding %q, status %d; want %q, %d", res.Encoding, res.StatusCode, tt.wantEncoding, tt.wantStatus)
			}
		})
	}
}

func TestFetchRedirects(t *testing.T) {
	ts := site(t)
	f, d := newFetcher(t, Config{})
	to := url.QueryEscape(ts.URL + "/json")
	res, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/redirect?to=`+to+`"}`))
	if err != nil || res.StatusCode != 302 || res.Headers["location"] != ts.URL+"/json" {
		t.Fatalf("without allowRedirects: %+v, %v; want the 302 itself", res, err)
	}
	res, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/redirect?to=`+to+`","allowRedirects":true}`))
	if err != nil || res.StatusCode != 200 || res.Content != `{"a":1}` {
		t.Fatalf("with allowRedirects: %+v, %v", res, err)
	}
	_, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/loop","allowRedirects":true}`))
	if bb.CodeOf(err) != bb.CodeBadGateway || !strings.Contains(bb.MessageOf(err), "more than 10") {
		t.Errorf("redirect loop: %v", err)
	}
	for _, scheme := range []string{"file:///etc/passwd", "gopher://127.0.0.1:25/", "ftp://example.com/"} {
		_, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/redirect?to=`+url.QueryEscape(scheme)+`","allowRedirects":true}`))
		if bb.CodeOf(err) != bb.CodeForbidden || !strings.Contains(bb.MessageOf(err), "only http and https") {
			t.Errorf("redirect to %s: %v; want 403", scheme, err)
		}
	}
	// A hop the policy refuses: the refusal, saying which redirect led there.
	refused := httptest.NewServer(http.NotFoundHandler())
	defer refused.Close()
	d.mu.Lock()
	d.refuse[refused.Listener.Addr().String()] = true
	d.mu.Unlock()
	_, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/redirect?to=`+url.QueryEscape(refused.URL+"/x")+`","allowRedirects":true}`))
	if bb.CodeOf(err) != bb.CodeForbidden || !strings.Contains(bb.MessageOf(err), "redirected to "+refused.URL+"/x") ||
		!strings.Contains(bb.MessageOf(err), "refused by the test policy") {
		t.Errorf("redirect to a refused address: %v", err)
	}
}

func TestFetchLimits(t *testing.T) {
	ts := site(t)
	f, _ := newFetcher(t, Config{MaxSize: 1024, Timeout: 500 * time.Millisecond})
	for _, path := range []string{"/big", "/big-chunked", "/gzip-bomb"} {
		_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+path+`"}`))
		if bb.CodeOf(err) != bb.CodeBadGateway || !bb.NoRetryOf(err) || !strings.Contains(bb.MessageOf(err), "larger than 1024 bytes") {
			t.Errorf("%s: %v; want a 502 about the size, not retried", path, err)
		}
	}
	for _, path := range []string{"/slow", "/hang"} {
		start := time.Now()
		_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+path+`"}`))
		if bb.CodeOf(err) != bb.CodeTimeout || !strings.Contains(bb.MessageOf(err), "within 500ms") {
			t.Errorf("%s: %v; want a 504", path, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %s; the timeout is 500ms", path, d)
		}
	}
}

func TestFetchTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret") }))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the test
	ts.StartTLS()
	defer ts.Close()
	f, _ := newFetcher(t, Config{})
	_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/"}`))
	if bb.CodeOf(err) != bb.CodeBadGateway || !bb.NoRetryOf(err) || !strings.Contains(bb.MessageOf(err), "allowInsecureSsl") {
		t.Errorf("self-signed without allowInsecureSsl: %v", err)
	}
	res, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/","allowInsecureSsl":true}`))
	if err != nil || res.Content != "secret" {
		t.Errorf("with allowInsecureSsl: %+v, %v", res, err)
	}
	// The insecure connection is not reused for a fetch that checks certificates.
	if _, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/"}`)); bb.CodeOf(err) != bb.CodeBadGateway {
		t.Errorf("after an insecure fetch: %v; want the certificate refused again", err)
	}
	plain := site(t)
	_, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+strings.Replace(plain.URL, "http:", "https:", 1)+`/json"}`))
	if bb.CodeOf(err) != bb.CodeBadGateway || !strings.Contains(bb.MessageOf(err), "fetching https://") {
		t.Errorf("https to a plain server: %v", err)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	_, err = f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"http://`+addr+`/"}`))
	if bb.CodeOf(err) != bb.CodeBadGateway || !strings.Contains(bb.MessageOf(err), "refused the connection") {
		t.Errorf("closed port: %v", err)
	}
}

func TestFetchConcurrency(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer ts.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release) // before the wait: the fetches end with it
	f, _ := newFetcher(t, Config{MaxConcurrent: 3, MaxPerProject: 2})
	start := func(project string) {
		wg.Go(func() { f.Fetch(context.Background(), project, mustReq(t, `{"url":"`+ts.URL+`/"}`)) }) // ends with release
		<-entered
	}
	start("a")
	start("a")
	_, err := f.Fetch(t.Context(), "a", mustReq(t, `{"url":"`+ts.URL+`/"}`))
	if bb.CodeOf(err) != bb.CodeLimit || !strings.Contains(bb.MessageOf(err), "per project") {
		t.Errorf("third fetch of one project: %v; want 429 per project", err)
	}
	start("b")
	_, err = f.Fetch(t.Context(), "c", mustReq(t, `{"url":"`+ts.URL+`/"}`))
	if bb.CodeOf(err) != bb.CodeLimit || !strings.Contains(bb.MessageOf(err), "--fetch-concurrency") {
		t.Errorf("fetch past the node's limit: %v; want 429", err)
	}
}

func TestFetchProxies(t *testing.T) {
	ts := site(t)
	f, _ := newFetcher(t, Config{})
	if _, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/json","proxies":true}`)); bb.CodeOf(err) != bb.CodeInvalid ||
		!strings.Contains(bb.MessageOf(err), "--proxy-upstream") {
		t.Errorf("proxies without upstreams: %v; want 400", err)
	}
	ups := []bb.ProxyUpstream{{Scheme: "http", Host: "up1.test:3128", Managed: true}, {Scheme: "socks5", Host: "up2.test:1080", Managed: true}}
	f, d := newFetcher(t, Config{Upstreams: ups})
	for range 2 {
		if _, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/json","proxies":true}`)); err != nil {
			t.Fatal(err)
		}
		f.Close() // a new connection for each, through the next upstream
	}
	host := strings.TrimPrefix(ts.URL, "http://")
	want := []string{"via up2.test:1080 " + host, "via up1.test:3128 " + host}
	if diff := cmp.Diff(want, d.seen()); diff != "" {
		t.Errorf("dials (-want +got):\n%s", diff)
	}
}

func TestFetchObserve(t *testing.T) {
	ts := site(t)
	var mu sync.Mutex
	var recs []Record
	f, _ := newFetcher(t, Config{MaxSize: 1024, Observe: func(r Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() }})
	f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/json"}`))                          // ok
	f.Fetch(t.Context(), "p2", mustReq(t, `{"url":"`+ts.URL+`/big","format":"markdown"}`))       // too large
	f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/png","format":"markdown"}`))       // unprocessable
	f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/x","format":"json","schema":{}}`)) // no model: not counted
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %s %d %d", r.ProjectID, r.Format, r.Outcome, r.Status, r.Bytes))
	}
	want := []string{"p1 raw ok 200 7", "p2 markdown too_large 200 0", "p1 markdown unprocessable 200 11"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestNewFetcherNeedsDial(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Dial") {
		t.Errorf("New without Dial = %v", err)
	}
}

// TestFetchConversionSlots checks that HTML-to-Markdown conversions wait for a slot
// within the fetch's time, and that raw fetches and non-HTML text do not need one.
func TestFetchConversionSlots(t *testing.T) {
	ts := site(t)
	f, _ := newFetcher(t, Config{MaxConversions: 1, Timeout: 300 * time.Millisecond})
	f.convert <- struct{}{} // another conversion holds the only slot
	_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/page","format":"markdown"}`))
	if bb.CodeOf(err) != bb.CodeTimeout || !strings.Contains(bb.MessageOf(err), "converting it to Markdown") {
		t.Errorf("markdown while the slot is held: %v; want 504", err)
	}
	for _, body := range []string{`{"url":"` + ts.URL + `/page"}`, `{"url":"` + ts.URL + `/text","format":"markdown"}`} {
		if _, err := f.Fetch(t.Context(), "p1", mustReq(t, body)); err != nil {
			t.Errorf("%s while the slot is held: %v", body, err)
		}
	}
	<-f.convert
	res, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/page","format":"markdown"}`))
	if err != nil || !strings.HasPrefix(res.Content, "# Hello") {
		t.Errorf("markdown with the slot free: %+v, %v", res, err)
	}
	if len(f.convert) != 0 {
		t.Errorf("%d conversion slots still held", len(f.convert))
	}
}
