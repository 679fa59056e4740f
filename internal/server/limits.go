package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// LimitFlags bound what a client can hold of the server, before and after it
// authenticates (security review F4, F12): idle and slow connections, connections per
// address and in all, and failed authentications per address.
type LimitFlags struct {
	HTTPIdleTimeout time.Duration // a keep-alive connection waiting for its next request
	BodyTimeout     time.Duration // reading a request body, from the end of its headers
	UploadTimeout   time.Duration // the same for uploads, extensions and WebDriver commands
	MaxConns        int           // open connections in all; 0: no limit
	MaxConnsPerIP   int           // open connections per client address; 0: no limit
	AuthFailures    int           // failed authentications per address and window before 429; 0: no limit
	AuthWindow      time.Duration
	TrustedProxies  string // comma-separated addresses or CIDRs whose X-Forwarded-For names the client
}

func defaultLimitFlags() LimitFlags {
	return LimitFlags{HTTPIdleTimeout: 120 * time.Second, BodyTimeout: 60 * time.Second, UploadTimeout: 15 * time.Minute,
		MaxConns: 4096, MaxConnsPerIP: 256, AuthFailures: 30, AuthWindow: time.Minute}
}

// maxHeaderBytes bounds a request's headers (net/http's default is 1 MiB per connection).
const maxHeaderBytes = 64 << 10

// flags defines the flags of LimitFlags.
func (l *LimitFlags) flags(f flagTable) {
	f.dur(&l.HTTPIdleTimeout, "http-idle-timeout", "close a keep-alive HTTP connection that sent no request for this time")
	f.dur(&l.BodyTimeout, "body-timeout", "a request body must arrive within this time after its headers")
	f.dur(&l.UploadTimeout, "upload-timeout", "the same for bodies that may be large: uploads, extensions, WebDriver commands")
	f.num(&l.MaxConns, "max-conns", "open client connections at most (websockets included); 0: no limit")
	f.num(&l.MaxConnsPerIP, "max-conns-per-ip", "open connections per client address (IPv6: per /64) at most; loopback and trusted proxies are exempt; 0: no limit")
	f.num(&l.AuthFailures, "auth-failures", "failed authentications (401) per client address and window; beyond them 401s become 429 with Retry-After; 0: no limit")
	f.dur(&l.AuthWindow, "auth-failure-window", "the window of --auth-failures")
	f.str(&l.TrustedProxies, "trusted-proxies", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For gives the client address (default: none, the TCP peer is the client)")
}

// validateLimits checks the limits and the operator's secrets.
func (c *Config) validateLimits() []error {
	var errs []error
	l := c.Limits
	if l.HTTPIdleTimeout <= 0 || l.BodyTimeout <= 0 || l.UploadTimeout <= 0 || l.AuthWindow <= 0 {
		errs = append(errs, errors.New("http-idle-timeout, body-timeout, upload-timeout and auth-failure-window must be positive"))
	}
	if l.MaxConns < 0 || l.MaxConnsPerIP < 0 || l.AuthFailures < 0 {
		errs = append(errs, errors.New("max-conns, max-conns-per-ip and auth-failures must not be negative"))
	}
	if _, err := parseTrustedProxies(l.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if err := checkSecret("api-key", c.APIKey); err != nil {
		errs = append(errs, err)
	}
	if err := checkSecret("metrics-token", c.MetricsToken); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// minSecretLen is the shortest API key or metrics token an operator may choose.
const minSecretLen = 20

// weakSecrets are parts of placeholder and guessable secrets, compared lower-case with
// '-' and '_' removed.
var weakSecrets = []string{"changeme", "password", "passw0rd", "yourapikey", "replaceme", "letmein", "qwerty", "secretkey"}

// checkSecret refuses an operator-chosen secret that is short or an obvious placeholder
// (security review F12). "" is fine: the key is then generated, the metrics off.
func checkSecret(flag, v string) error {
	if v == "" {
		return nil
	}
	generate := "generate one with: openssl rand -hex 32"
	if len(v) < minSecretLen {
		return fmt.Errorf("%s must be at least %d characters (%s)", flag, minSecretLen, generate)
	}
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(v))
	distinct := make(map[rune]bool)
	for _, r := range norm {
		distinct[r] = true
	}
	if len(distinct) < 8 {
		return fmt.Errorf("%s is too repetitive to be a secret (%s)", flag, generate)
	}
	for _, w := range weakSecrets {
		if strings.Contains(norm, w) {
			return fmt.Errorf("%s looks like a placeholder (it contains %q); %s", flag, w, generate)
		}
	}
	return nil
}

// limitServer applies the limits to srv and returns ln with the connection caps: the
// idle timeout, a header size bound, body read deadlines and the failed-authentication
// limit around srv.Handler.
func limitServer(srv *http.Server, ln net.Listener, l LimitFlags, hop func(*http.Request) bool, logger *slog.Logger) net.Listener {
	trusted, _ := parseTrustedProxies(l.TrustedProxies) // checked by Config.Validate
	srv.IdleTimeout = l.HTTPIdleTimeout
	srv.MaxHeaderBytes = maxHeaderBytes
	al := newAuthLimiter(l.AuthFailures, l.AuthWindow, trusted, logger)
	al.hop = hop
	srv.Handler = al.wrap(withBodyDeadline(srv.Handler, l.BodyTimeout, l.UploadTimeout))
	return newConnLimiter(ln, l.MaxConns, l.MaxConnsPerIP, trusted, logger)
}

// withBodyDeadline gives a request body BodyTimeout (uploads: UploadTimeout) to arrive,
// from the end of its headers: a client that sends headers and then a trickle, or
// nothing, is cut off (F4.2). The deadline is lifted once the body has been read, so
// that a handler may take its time to answer. Requests without a body get no deadline;
// websocket handshakes with a body are refused, since their connection outlives the
// request.
func withBodyDeadline(next http.Handler, body, upload time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		d := body
		if largeBody(r) {
			d = upload
		}
		rc := http.NewResponseController(w)
		deadline := rc.SetReadDeadline(time.Now().Add(d)) == nil // false: not a net/http connection (tests)
		if r.Header.Get("Upgrade") != "" {
			w.Header().Set("Connection", "close") // the deadline bounds what net/http discards of the body
			writeLimitError(w, http.StatusBadRequest, "a websocket handshake must not have a body")
			return
		}
		if deadline {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// largeBody reports whether a request may legitimately carry a large body.
func largeBody(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/v1/extensions",
		r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/sessions/") && strings.HasSuffix(p, "/uploads"),
		strings.HasPrefix(p, "/webdriver/session/"): // file uploads (se/file) are base64 in commands
		return true
	}
	return false
}

// deadlineBody lifts the read deadline once the body has been read to its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		// The connection may be gone; then the next read says so.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// parseTrustedProxies parses --trusted-proxies.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %q is not an address or CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func trustedAddr(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrOf parses the address of a "host:port" (a RemoteAddr).
func addrOf(hostport string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// clientKey is what limits count by: the address, or for IPv6 its /64, which one
// client usually has whole.
func clientKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail for an IPv6 address
		return p.String()
	}
	return a.String()
}

// writeLimitError answers in the API's error shape (spec/API.md §1.5). None of these
// answers gets better by retrying at once.
func writeLimitError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-should-retry", "false")
	w.WriteHeader(status)
	// The client may be gone; there is nobody to tell.
	_ = json.NewEncoder(w).Encode(map[string]any{
		"statusCode": status, "code": status, "error": http.StatusText(status), "message": msg,
	})
}
