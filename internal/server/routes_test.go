package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutes pins the route table: which handler answers each path the server serves,
// websocket upgrades at / included.
func TestRoutes(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	h := routes(handlers{api: named("api"), gateway: named("gateway"), live: named("live"),
		webdriver: named("webdriver"), metrics: named("metrics"), ready: named("ready")})
	tests := []struct {
		method, path string
		upgrade      bool
		want         string // handler name, or "redirect" to the subtree with a slash
	}{
		{method: "POST", path: "/v1/sessions", want: "api"},
		{method: "GET", path: "/v1/sessions/x/debug", want: "api"},
		{method: "GET", path: "/connect", upgrade: true, want: "gateway"},
		{method: "GET", path: "/", upgrade: true, want: "gateway"},
		{method: "GET", path: "/", want: "live"},
		{method: "GET", path: "/debug/token", want: "live"},
		{method: "GET", path: "/ui/sessions", want: "live"},
		{method: "GET", path: "/debug", want: "api"},
		{method: "GET", path: "/ui", want: "api"},
		{method: "POST", path: "/webdriver/session", want: "webdriver"},
		{method: "GET", path: "/webdriver", want: "redirect"},
		{method: "GET", path: "/metrics", want: "metrics"},
		{method: "POST", path: "/metrics", want: "api"},
		{method: "GET", path: "/readyz", want: "ready"},
		{method: "GET", path: "/healthz", want: `{"status":"ok"}` + "\n"},
		{method: "POST", path: "/healthz", want: "api"},
		{method: "GET", path: "/connect/", want: "api"},
		{method: "GET", path: "/nothing", want: "api"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.upgrade {
				r.Header.Set("Upgrade", "websocket")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Body.String()
			if w.Code/100 == 3 && w.Header().Get("Location") == tt.path+"/" {
				got = "redirect"
			}
			if got != tt.want {
				t.Errorf("%s %s (upgrade %v) served by %q; want %q", tt.method, tt.path, tt.upgrade, got, tt.want)
			}
		})
	}
}
