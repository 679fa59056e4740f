package server

import (
	"io"
	"net/http"
	"strings"
)

// handlers are what the route table dispatches to.
type handlers struct {
	api       http.Handler // the REST API (httpapi): /v1/…, and the 404 of unknown paths
	gateway   http.Handler // the CDP gateway (cdpproxy): websocket upgrades
	live      http.Handler // live views, DevTools and the dashboard (liveview)
	webdriver http.Handler // the Selenium endpoint (webdriver)
	metrics   http.Handler // Prometheus metrics (ops.go)
	ready     http.Handler // the readiness probe (ops.go)
}

// routes is the server's one route table: every path it serves, and which package
// serves it. The middleware (limits.go: body deadlines, the failed-authentication limit;
// httpapi's request log) wraps it or the API, never a part of this table.
func routes(h handlers) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", h.api)
	// connectUrl is ws(s)://host/connect?signingKey=… (spec §4.1); for clients that build
	// Browserbase's URL form themselves, upgrades at / reach the gateway too (rootHandler).
	mux.Handle("/connect", h.gateway)
	mux.Handle("/debug/", h.live) // live views and DevTools (debuggerUrl, liveUrls)
	mux.Handle("/ui/", h.live)    // the dashboard's pages
	// Without a slash these are no subtree roots to redirect to: the API's 404.
	mux.Handle("/debug", h.api)
	mux.Handle("/ui", h.api)
	mux.Handle("/webdriver/", h.webdriver) // seleniumRemoteUrl; clients append /session…
	mux.Handle("GET /metrics", h.metrics)
	mux.Handle("GET /readyz", h.ready)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.Handle("/{$}", rootHandler(h))
	mux.Handle("/", h.api) // the API answers unknown paths with its 404 error shape
	return mux
}

// rootHandler serves /: a websocket upgrade is a CDP connection (the gateway), anything
// else the dashboard's home.
func rootHandler(h handlers) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			h.gateway.ServeHTTP(w, r)
			return
		}
		h.live.ServeHTTP(w, r)
	})
}
