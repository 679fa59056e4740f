package main

import (
	"net/http"
	"strings"
)

// withLiveView sends live views (/debug/…), the dashboard's pages (/ui/…) and plain
// requests for / (the dashboard's home) to live, and everything else, websocket
// upgrades at / included (the CDP gateway), to next.
func withLiveView(next, live http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/debug/") || strings.HasPrefix(p, "/ui/"),
			p == "/" && !strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			live.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
