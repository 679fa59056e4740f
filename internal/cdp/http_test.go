package cdp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /json/version", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"Browser":"HeadlessChrome/156.0.8078.108","Protocol-Version":"1.3","User-Agent":"Mozilla/5.0","V8-Version":"15.6","WebKit-Version":"537.36","webSocketDebuggerUrl":"ws://127.0.0.1:9222/devtools/browser/b1"}`))
	})
	mux.HandleFunc("GET /json/list", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"description":"","devtoolsFrontendUrl":"/devtools/inspector.html?ws=127.0.0.1:9222/devtools/page/P1","faviconUrl":"http://x/f.ico","id":"P1","title":"T","type":"page","url":"http://x/","webSocketDebuggerUrl":"ws://127.0.0.1:9222/devtools/page/P1"},{"id":"W1","type":"service_worker","url":"http://x/sw.js"}]`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	v, err := Version(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wantV := &VersionInfo{Browser: "HeadlessChrome/156.0.8078.108", ProtocolVersion: "1.3", UserAgent: "Mozilla/5.0",
		V8Version: "15.6", WebKitVersion: "537.36", WebSocketDebuggerURL: "ws://127.0.0.1:9222/devtools/browser/b1"}
	if diff := cmp.Diff(v, wantV); diff != "" {
		t.Errorf("Version (-got +want):\n%s", diff)
	}
	ts, err := List(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wantT := []Target{
		{ID: "P1", Type: "page", URL: "http://x/", Title: "T", FaviconURL: "http://x/f.ico",
			WebSocketDebuggerURL: "ws://127.0.0.1:9222/devtools/page/P1", DevToolsFrontendURL: "/devtools/inspector.html?ws=127.0.0.1:9222/devtools/page/P1"},
		{ID: "W1", Type: "service_worker", URL: "http://x/sw.js"},
	}
	if diff := cmp.Diff(ts, wantT); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	if _, err := List(t.Context(), srv.URL+"/nothing"); err == nil {
		t.Error("List of a 404 succeeded")
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		in, base, page string
		wantErr        bool
	}{
		{in: "ws://127.0.0.1:9222/devtools/browser/b1", base: "http://127.0.0.1:9222", page: "ws://127.0.0.1:9222/devtools/page/P1"},
		{in: "wss://example.test/devtools/browser/b1", base: "https://example.test", page: "wss://example.test/devtools/page/P1"},
		{in: "http://127.0.0.1:9222/", wantErr: true},
		{in: "ws:///devtools/browser/b1", wantErr: true},
		{in: "::", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			base, err := HTTPBase(tt.in)
			if (err != nil) != tt.wantErr || base != tt.base {
				t.Errorf("HTTPBase(%q) = %q, %v; want %q, err=%v", tt.in, base, err, tt.base, tt.wantErr)
			}
			page, err := PageURL(tt.in, "P1")
			if (err != nil) != tt.wantErr || page != tt.page {
				t.Errorf("PageURL(%q) = %q, %v; want %q, err=%v", tt.in, page, err, tt.page, tt.wantErr)
			}
		})
	}
}
