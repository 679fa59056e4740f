package metrics

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves g's metrics in the Prometheus text format to requests that carry
// "Authorization: Bearer <token>" (401 otherwise). Without a token the metrics are off
// (403): no client address is trusted, loopback included, since a session's browser or a
// reverse proxy on the same host would look local (security review F3).
func Handler(g prometheus.Gatherer, token string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError, // one failing source must not hide the rest
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			writeError(w, http.StatusForbidden, "metrics are off on this server; start it with --metrics-token to serve them")
			return
		}
		if !Authorized(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="browserd metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics need an Authorization: Bearer token (--metrics-token)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Authorized reports whether r carries "Authorization: Bearer <token>" for a non-empty
// token, compared in constant time.
func Authorized(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// writeError answers in the API's error shape (spec §1.5).
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; there is nobody to tell.
	_ = json.NewEncoder(w).Encode(map[string]any{
		"statusCode": status, "code": status, "error": http.StatusText(status), "message": msg,
	})
}
