package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fetch"
)

// The SSRF tests of POST /v1/fetch: the fetcher as the server wires it (newFetcher:
// internal/fetch over internal/proxy's policy), against loopback test servers. Each
// attack of docs/SECURITY.md ("Fetch") has a case. Off, private networks are refused;
// on (as the compat suite runs), loopback pages are fetched but the server's own ports
// never are.

// fakeResolver answers names from a table (the machine has no DNS).
func fakeResolver(answers map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		as, ok := answers[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		out := make([]netip.Addr, len(as))
		for i, a := range as {
			out[i] = netip.MustParseAddr(a)
		}
		return out, nil
	}
}

func wiredFetcher(t *testing.T, allowPrivate bool, upstreams string, reserved *bb.ReservedPorts, usage ...func(string, int64)) *fetch.Fetcher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Sandbox.AllowPrivateNetworks = allowPrivate
	cfg.ProxyUpstream = upstreams
	res := fakeResolver(map[string][]string{
		"rebind.test":   {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
		"mixed.test":    {"93.184.215.14", "10.0.0.7"},
		"v6.test":       {"fd00::1"},
	})
	var use func(string, int64)
	if len(usage) > 0 {
		use = usage[0]
	}
	f, err := newFetcher(cfg, reserved, "140.0.7339.80", nil, use, res, nil)
	if err != nil || f == nil {
		t.Fatalf("newFetcher = %v, %v", f, err)
	}
	t.Cleanup(f.Close)
	return f
}

func fetchURL(t *testing.T, f *fetch.Fetcher, body string) (*bb.FetchResult, error) {
	t.Helper()
	req, err := bb.DecodeFetchRequest([]byte(body))
	if err != nil {
		return nil, err
	}
	return f.Fetch(t.Context(), "p1", req)
}

func TestFetchSSRF(t *testing.T) {
	hits := 0
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<h1>inside</h1>")
	}))
	defer site.Close()
	port := site.URL[strings.LastIndex(site.URL, ":")+1:]
	closed := wiredFetcher(t, false, "", &bb.ReservedPorts{})
	tests := []struct {
		name, url string
		code      bb.ErrorCode
		want      string
	}{
		{name: "loopback", url: site.URL + "/", code: bb.CodeForbidden, want: "127.0.0.1:" + port + " is loopback, not a public address"},
		{name: "localhost", url: "http://localhost:" + port + "/", code: bb.CodeForbidden, want: "loopback"},
		{name: "another loopback", url: "http://127.0.0.2:" + port + "/", code: bb.CodeForbidden, want: "loopback"},
		{name: "unspecified", url: "http://0.0.0.0:" + port + "/", code: bb.CodeForbidden, want: "unspecified"},
		{name: "cloud metadata", url: "http://169.254.169.254/latest/meta-data/", code: bb.CodeForbidden, want: "cloud metadata"},
		{name: "private 10/8", url: "http://10.0.0.1/", code: bb.CodeForbidden, want: "private network"},
		{name: "private 172.16/12", url: "http://172.16.0.1/", code: bb.CodeForbidden, want: "private network"},
		{name: "private 192.168/16", url: "https://192.168.1.1/", code: bb.CodeForbidden, want: "private network"},
		{name: "carrier-grade NAT", url: "http://100.64.0.1/", code: bb.CodeForbidden, want: "carrier-grade"},
		{name: "ipv6 loopback", url: "http://[::1]:" + port + "/", code: bb.CodeForbidden, want: "loopback"},
		{name: "ipv4-mapped loopback", url: "http://[::ffff:127.0.0.1]:" + port + "/", code: bb.CodeForbidden, want: "loopback"},
		{name: "ipv6 link-local", url: "http://[fe80::1]/", code: bb.CodeForbidden, want: "link-local"},
		{name: "ipv6 unique local", url: "http://[fd12::1]/", code: bb.CodeForbidden, want: "private network"},
		{name: "nat64 metadata", url: "http://[64:ff9b::a9fe:a9fe]/", code: bb.CodeForbidden, want: "cloud metadata"},
		{name: "6to4 loopback", url: "http://[2002:7f00:1::]/", code: bb.CodeForbidden, want: "loopback"},
		{name: "name resolving to loopback", url: "http://rebind.test:" + port + "/", code: bb.CodeForbidden, want: "rebind.test:" + port + " resolves to 127.0.0.1 (loopback)"},
		{name: "name resolving to metadata", url: "http://metadata.test/", code: bb.CodeForbidden, want: "169.254.169.254"},
		{name: "name resolving to public and private", url: "http://mixed.test/", code: bb.CodeForbidden, want: "10.0.0.7"},
		{name: "name resolving to ipv6 private", url: "http://v6.test/", code: bb.CodeForbidden, want: "fd00::1"},
		{name: "decimal ip", url: "http://2130706433:" + port + "/", code: bb.CodeInvalid, want: "not a valid host name or IP address"},
		{name: "octal ip", url: "http://0177.0.0.1:" + port + "/", code: bb.CodeInvalid, want: "not a valid host"},
		{name: "hex ip", url: "http://0x7f.0.0.1:" + port + "/", code: bb.CodeInvalid, want: "not a valid host"},
		{name: "short ip", url: "http://127.1:" + port + "/", code: bb.CodeInvalid, want: "not a valid host"},
		{name: "ipv6 zone", url: "http://[fe80::1%25eth0]/", code: bb.CodeInvalid, want: "not a valid host"},
		{name: "file scheme", url: "file:///etc/passwd", code: bb.CodeInvalid, want: `not "file"`},
		{name: "gopher scheme", url: "gopher://127.0.0.1:" + port + "/_GET", code: bb.CodeInvalid, want: `not "gopher"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fetchURL(t, closed, `{"url":"`+tt.url+`"}`)
			if bb.CodeOf(err) != tt.code || !strings.Contains(bb.MessageOf(err), tt.want) {
				t.Fatalf("fetch %s = %v; want %s saying %q", tt.url, err, tt.code, tt.want)
			}
			if tt.code == bb.CodeForbidden && !strings.Contains(bb.MessageOf(err), "--allow-private-networks") {
				t.Errorf("the refusal does not say how to open private networks: %s", bb.MessageOf(err))
			}
		})
	}
	if hits != 0 {
		t.Fatalf("the loopback site was reached %d times with private networks refused", hits)
	}

	// Private networks allowed: loopback pages are fetched; the server's own ports are
	// refused however they are named, and so is a redirect to one.
	reserved := &bb.ReservedPorts{}
	own := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("the server's own port was reached: %s", r.URL) }))
	defer own.Close()
	ownPort := own.URL[strings.LastIndex(own.URL, ":")+1:]
	defer reserved.ReserveAddr(own.Listener.Addr())()
	open := wiredFetcher(t, true, "", reserved)
	res, err := fetchURL(t, open, `{"url":"`+site.URL+`/","format":"markdown"}`)
	if err != nil || res.Content != "# inside" {
		t.Fatalf("loopback with private networks allowed: %+v, %v", res, err)
	}
	if ua := fetchUserAgent("140.0.7339.80"); !strings.Contains(ua, "Chrome/140.0.0.0") {
		t.Errorf("user agent %q", ua)
	}
	for _, u := range []string{own.URL + "/v1/projects", "http://localhost:" + ownPort + "/", "http://127.0.0.3:" + ownPort + "/", "http://[::ffff:127.0.0.1]:" + ownPort + "/"} {
		_, err := fetchURL(t, open, `{"url":"`+u+`"}`)
		if bb.CodeOf(err) != bb.CodeForbidden || !strings.Contains(bb.MessageOf(err), "one this browserd server listens on") {
			t.Errorf("fetch %s = %v; want 403 for the server's own port", u, err)
		}
	}
	_, err = fetchURL(t, open, `{"url":"`+site.URL+`/?to=`+url.QueryEscape(own.URL+"/v1/sessions")+`","allowRedirects":true}`)
	if bb.CodeOf(err) != bb.CodeForbidden || !strings.Contains(bb.MessageOf(err), "redirected to "+own.URL+"/v1/sessions") {
		t.Errorf("redirect to the server's own port = %v; want 403 naming the redirect", err)
	}
}

// TestFetchThroughUpstream checks proxies:true as the server wires it: through the
// managed upstream (reached on loopback even with private networks refused, as for
// sessions), which resolves and reaches the site itself.
func TestFetchThroughUpstream(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "via upstream, host "+r.Host)
	}))
	defer site.Close()
	var asked []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Header.Get("Proxy-Authorization") == "" {
			http.Error(w, "CONNECT with credentials only", http.StatusProxyAuthRequired)
			return
		}
		asked = append(asked, r.Host)
		out, err := net.Dial("tcp", site.Listener.Addr().String()) // every tunnel goes to the site
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		in, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			out.Close()
			return
		}
		io.WriteString(in, "HTTP/1.1 200 OK\r\n\r\n")
		go func() { io.Copy(out, bufio.NewReader(brw)); out.Close() }() // ends when either side closes
		io.Copy(in, out)
		in.Close()
	}))
	defer up.Close()
	var counted []string // the project's proxy bytes, as the server adds them to its usage
	f := wiredFetcher(t, false, "http://user:pw@"+up.Listener.Addr().String(), &bb.ReservedPorts{}, func(project string, n int64) {
		counted = append(counted, fmt.Sprint(project, " ", n))
	})
	res, err := fetchURL(t, f, `{"url":"http://shop.example/item","proxies":true}`)
	if err != nil || res.Content != "via upstream, host shop.example" {
		t.Fatalf("proxies:true = %+v, %v", res, err)
	}
	if want := fmt.Sprint("p1 ", len(res.Content)); len(counted) != 1 || counted[0] != want {
		t.Errorf("proxy bytes counted for the project: %v; want [%s]", counted, want)
	}
	if len(asked) != 1 || asked[0] != "shop.example:80" {
		t.Errorf("the upstream was asked for %v", asked)
	}
	if _, err := fetchURL(t, f, `{"url":"http://shop.example/item"}`); bb.CodeOf(err) != bb.CodeBadGateway {
		t.Errorf("without proxies the name is resolved here (and fails): %v", err)
	}
	if len(counted) != 1 {
		t.Errorf("a fetch without proxies counted proxy bytes: %v", counted)
	}
}

// TestFetchOtherProjects: POST /v1/fetch without a key or with a bad key is 401 and
// reaches no site; another project's key fetches for its own project, and gets 404 for
// the usage the default project's fetches count in.
func TestFetchOtherProjects(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "the page")
	}))
	defer site.Close()
	dir := t.TempDir()
	srv := startServer(t, dir, defaultEnv(), "--allow-private-networks")
	_, otherKey := otherProject(t, dir)
	body := map[string]any{"url": site.URL + "/"}
	for _, key := range []string{"", badAPIKey} {
		if code, b := call(t, srv.URL, "POST", "/v1/fetch", key, body); code != http.StatusUnauthorized || !strings.Contains(string(b), `"statusCode":401`) {
			t.Errorf("fetch with key %q = %d %s; want 401 in the error shape", key, code, b)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("fetches without a valid key reached the site %d times", n)
	}
	var res struct {
		Content string `json:"content"`
	}
	callJSON(t, srv.URL, "POST", "/v1/fetch", otherKey, body, http.StatusOK, &res)
	if res.Content != "the page" || hits.Load() != 1 {
		t.Errorf("fetch with the other project's key = %+v, %d site hits; want the page, 1", res, hits.Load())
	}
	var mine []struct {
		ID string `json:"id"`
	}
	callJSON(t, srv.URL, "GET", "/v1/projects", testAPIKey, nil, http.StatusOK, &mine)
	if len(mine) != 1 {
		t.Fatalf("GET /v1/projects = %+v; want the default project", mine)
	}
	checkOthersRefused(t, srv.URL, otherKey, []apiCall{{"GET", "/v1/projects/" + mine[0].ID + "/usage", nil}})
}

func TestFetchConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(c Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.Fetch.MaxSize == 5<<20 && c.Fetch.Timeout == fetch.DefaultTimeout && c.Fetch.Concurrency == 16 && c.Fetch.LLMURL == ""
		}},
		{name: "flags and key from env", args: []string{"--fetch-max-size", "1MiB", "--fetch-timeout", "5s", "--llm-url", "http://127.0.0.1:11434/v1", "--llm-model", "qwen"},
			env: map[string]string{LLMAPIKeyEnv: "sk-1"}, check: func(c Config) bool {
				return c.Fetch.MaxSize == 1<<20 && c.Fetch.Timeout.Seconds() == 5 && c.Fetch.LLMModel == "qwen" && c.Fetch.LLMAPIKey == "sk-1"
			}},
		{name: "url without model", args: []string{"--llm-url", "http://x/v1"}, wantErr: "llm-url and llm-model go together"},
		{name: "bad llm url", args: []string{"--llm-url", "x", "--llm-model", "m"}, wantErr: "llm-url must be an absolute http(s) URL"},
		{name: "zero size", args: []string{"--fetch-max-size", "0"}, wantErr: "fetch-max-size must be at least 1 byte"},
		{name: "negative concurrency", args: []string{"--fetch-concurrency", "-1"}, wantErr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			err := c.Load(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%q) = %v; want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("Load(%q) = %v, %+v", tt.args, err, c.Fetch)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Fetch.Concurrency = 0
	if f, err := newFetcher(cfg, nil, "", nil, nil, nil, nil); f != nil || err != nil {
		t.Errorf("fetch-concurrency 0: %v, %v; want fetching off", f, err)
	}
}

// TestFetchModelWiring checks format "json" as the flags wire it: --llm-url and
// --llm-model, the key from BROWSERD_LLM_API_KEY sent as a bearer token to the model
// (a fake OpenAI-compatible endpoint, the external service), the page fetched for real.
func TestFetchModelWiring(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<h1>Blue kettle</h1><p>Price: 30 EUR</p>")
	}))
	defer page.Close()
	var gotAuth, gotBody string
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // a short body fails the checks below
		gotAuth, gotBody = r.Header.Get("Authorization"), string(b)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"{\"name\":\"Blue kettle\",\"price\":30}"}}]}`)
	}))
	defer model.Close()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	env := map[string]string{LLMAPIKeyEnv: "sk-wired", "BROWSERD_ALLOW_PRIVATE_NETWORKS": "true"}
	if err := cfg.Load([]string{"--llm-url", model.URL + "/v1", "--llm-model", "tiny"}, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	f, err := newFetcher(cfg, &bb.ReservedPorts{}, "", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := fetchURL(t, f, `{"url":"`+page.URL+`/","format":"json","schema":{"type":"object","required":["name","price"]}}`)
	if err != nil || string(res.Extracted) != `{"name":"Blue kettle","price":30}` {
		t.Fatalf("json fetch = %+v, %v", res, err)
	}
	if gotAuth != "Bearer sk-wired" || !strings.Contains(gotBody, `"model":"tiny"`) || !strings.Contains(gotBody, "# Blue kettle") {
		t.Errorf("model request: auth %q, body %s", gotAuth, gotBody)
	}
}
