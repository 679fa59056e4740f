package metrics

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves g's metrics in the Prometheus text format. With a token, every request
// must carry "Authorization: Bearer <token>" (401 otherwise). Without one, only clients
// on a loopback address are served (403 otherwise): behind a reverse proxy on the same
// host every client looks local, so set a token there.
func Handler(g prometheus.Gatherer, token string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError, // one failing source must not hide the rest
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="browserd metrics"`)
				writeError(w, http.StatusUnauthorized, "metrics need an Authorization: Bearer token (--metrics-token)")
				return
			}
		} else if !loopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, "metrics are served to loopback clients only; set --metrics-token to serve them to others")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopback reports whether a request's RemoteAddr ("ip:port") is a loopback address.
func loopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
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
