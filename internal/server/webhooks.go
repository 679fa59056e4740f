package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/proxy"
	"github.com/browserd/browserd/internal/webhooks"
)

// settingWebhookKey names the server-wide key that seals webhook signing secrets.
const settingWebhookKey = "webhook_secret_key"

// WebhookFlags configure webhook deliveries (internal/webhooks, docs/SECURITY.md).
type WebhookFlags struct {
	// AllowHTTP admits http:// endpoints (tests, development); else only https://.
	AllowHTTP bool
	// AllowPrivateNetworks lets deliveries reach loopback, link-local and private
	// addresses; off, only public ones (the session proxy's address classes).
	AllowPrivateNetworks bool
	// RetryFor is how long a delivery is retried before it is failed.
	RetryFor time.Duration
	// FirstRetry is the delay before the first retry (doubling to an hour).
	FirstRetry time.Duration
}

func defaultWebhookFlags() WebhookFlags {
	return WebhookFlags{RetryFor: 24 * time.Hour, FirstRetry: 10 * time.Second}
}

// flags defines the flags of WebhookFlags.
func (wf *WebhookFlags) flags(f flagTable) {
	f.boolean(&wf.AllowHTTP, "webhook-allow-http", "accept http:// webhook endpoints (for tests and development); off, only https://", true)
	f.boolean(&wf.AllowPrivateNetworks, "webhook-allow-private-networks", "let webhook deliveries reach loopback, link-local (cloud metadata) and private addresses; off, only public addresses", true)
	f.dur(&wf.RetryFor, "webhook-retry-for", "retry a webhook delivery that gets no 2xx answer for this long, with exponential backoff, then mark it failed")
	f.dur(&wf.FirstRetry, "webhook-retry-min", "delay before a webhook delivery's first retry; it doubles after each failed attempt, up to an hour")
}

// validate checks the webhook flags.
func (wf WebhookFlags) validate() []error {
	var errs []error
	if wf.RetryFor <= 0 {
		errs = append(errs, fmt.Errorf("webhook-retry-for must be positive, got %s", wf.RetryFor))
	}
	if wf.FirstRetry <= 0 {
		errs = append(errs, fmt.Errorf("webhook-retry-min must be positive, got %s", wf.FirstRetry))
	}
	return errs
}

// newWebhooks returns the webhook service: its sealing key kept in the database
// (created on first use, like the snapshot key, so every node of a cluster shares it),
// its connections made by a proxy.Dialer, the session proxies' address policy (one
// policy for browsers, fetches and webhooks): public addresses only unless
// --webhook-allow-private-networks, never the server's own ports.
func newWebhooks(ctx context.Context, cfg Config, st Store, node string, reserved *bb.ReservedPorts, logger *slog.Logger) (*webhooks.Service, error) {
	init := make([]byte, webhooks.KeySize)
	_, _ = rand.Read(init) // never fails (crypto/rand aborts instead)
	key, err := st.SettingOrInit(ctx, settingWebhookKey, init)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	wf := cfg.Webhooks
	d := proxy.NewDialer(proxy.Config{AllowPrivate: wf.AllowPrivateNetworks, Reserved: reserved, DialTimeout: 10 * time.Second})
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.Dial(ctx, nil, addr)
		if be, ok := errors.AsType[*proxy.BlockedError](err); ok {
			return nil, webhookRefusal(be)
		}
		return c, err
	}
	return webhooks.New(webhooks.Config{Store: st, Key: key, NodeID: node, AllowHTTP: wf.AllowHTTP, Dial: dial,
		Logger: logger, RetryFor: wf.RetryFor, FirstRetry: wf.FirstRetry})
}

// webhookRefusal says why the policy refused an endpoint's address, with the webhook
// flag (the BlockedError's own text names the browsers' flag).
func webhookRefusal(be *proxy.BlockedError) error {
	switch {
	case be.BadHost:
		return fmt.Errorf("%w: %q is not a valid host name or IP address", webhooks.ErrAddressRefused, be.Host)
	case be.ServerPort:
		return fmt.Errorf("%w: %s (%s) is one of this server's own ports", webhooks.ErrAddressRefused, be.Host, be.Addr)
	}
	return fmt.Errorf("%w: %s is %s (%s), not a public address; the operator can allow private networks with --webhook-allow-private-networks",
		webhooks.ErrAddressRefused, be.Host, be.Addr, be.Class)
}

var _ bb.EventSink = (*webhooks.Service)(nil)
