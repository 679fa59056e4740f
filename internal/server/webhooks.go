package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
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
// connections only to public addresses unless --webhook-allow-private-networks (the
// session proxy's classification, proxy.Classify: one policy for both).
func newWebhooks(ctx context.Context, cfg Config, st Store, node string, logger *slog.Logger) (*webhooks.Service, error) {
	init := make([]byte, webhooks.KeySize)
	_, _ = rand.Read(init) // never fails (crypto/rand aborts instead)
	key, err := st.SettingOrInit(ctx, settingWebhookKey, init)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	wf := cfg.Webhooks
	var check func(netip.Addr) error
	if !wf.AllowPrivateNetworks {
		check = func(a netip.Addr) error {
			if c := proxy.Classify(a); c != proxy.Public {
				return fmt.Errorf("%s is %s, not a public address; webhooks reach only public addresses unless the operator allows private networks with --webhook-allow-private-networks", a, c)
			}
			return nil
		}
	}
	return webhooks.New(webhooks.Config{Store: st, Key: key, NodeID: node, AllowHTTP: wf.AllowHTTP, CheckAddr: check,
		Logger: logger, RetryFor: wf.RetryFor, FirstRetry: wf.FirstRetry})
}

var _ bb.EventSink = (*webhooks.Service)(nil)
