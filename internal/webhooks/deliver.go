package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	bb "github.com/browserd/browserd"
)

// client POSTs deliveries. Its connections go only where checkAddr allows, checked on
// the address being dialled (after resolution, so a name that resolves to a private
// address, or starts to, is refused), never through an environment proxy; redirects are
// not followed (a 3xx is not a 2xx: retried).
type client struct {
	http *http.Client
}

// errAddrRefused marks a connection the address policy refused.
var errAddrRefused = errors.New("address refused")

func newClient(timeout time.Duration, checkAddr func(netip.Addr) error) *client {
	d := &net.Dialer{Timeout: timeout}
	if checkAddr != nil {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errAddrRefused, address)
			}
			if err := checkAddr(ap.Addr().Unmap()); err != nil {
				return fmt.Errorf("%w: %w", errAddrRefused, err)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &client{http: &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// maxErrorBody is how much of a non-2xx answer is kept in the attempt's error.
const maxErrorBody = 256

// send POSTs body to endpoint signed with secrets and returns the attempt.
func (c *client) send(ctx context.Context, endpoint string, secrets []string, eventID string, body []byte) bb.WebhookAttempt {
	start := time.Now()
	a := bb.WebhookAttempt{At: start.UTC()}
	ts := strconv.FormatInt(start.Unix(), 10)
	sig, err := signatureHeader(secrets, eventID, ts, body)
	if err != nil {
		a.Error = "sign: " + err.Error()
		return a
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		a.Error = "request: " + err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "browserd-webhooks/1")
	req.Header.Set(HeaderID, eventID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sig)
	resp, err := c.http.Do(req)
	a.Duration = time.Since(start).Round(time.Millisecond)
	if err != nil {
		a.Error = attemptError(err)
		return a
	}
	defer resp.Body.Close()
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		a.Error = "HTTP " + strconv.Itoa(resp.StatusCode)
		if len(b) > 0 {
			a.Error += ": " + string(bytes.ToValidUTF8(b, []byte("?")))
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return a
}

// attemptError is how a failed request reads in the delivery list: the cause, without
// Go's "Post \"URL\":" prefix.
func attemptError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap()
	}
	if errors.Is(err, errAddrRefused) {
		return "connection refused by the server's address policy: " + err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout) {
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// backoff is the delay after the n-th failed attempt (n ≥ 1): first·2^(n-1), at most
// max, with ±20% jitter.
func backoff(n int, first, max time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
