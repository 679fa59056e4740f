package webhooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// client POSTs deliveries. Its connections are made by the Dial it is given (the
// server's address policy, checked on the addresses actually dialled), never through an
// environment proxy; redirects are not followed (a 3xx is not a 2xx: retried).
type client struct {
	http *http.Client
}

// ErrAddressRefused is wrapped by a Config.Dial that refuses a destination by policy.
var ErrAddressRefused = errors.New("address refused by the server's policy")

func newClient(timeout time.Duration, dial func(ctx context.Context, addr string) (net.Conn, error)) *client {
	d := &net.Dialer{Timeout: timeout}
	dialContext := d.DialContext
	if dial != nil {
		dialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) }
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialContext,
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
	if errors.Is(err, ErrAddressRefused) {
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
