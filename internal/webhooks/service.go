package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	bb "github.com/browserd/browserd"
)

// Store is what the service keeps in the database.
type Store interface {
	bb.WebhookStore
}

// Config configures a Service. Durations at 0 take the default in brackets.
type Config struct {
	// Store keeps the webhooks and the outbox; required.
	Store Store
	// Key seals the signing secrets at rest (KeySize bytes, kept by the server in its
	// database settings like the context snapshot key); required.
	Key []byte
	// NodeID names this node in the outbox's leases.
	NodeID string
	// AllowHTTP admits http:// endpoints (tests, development); else only https://.
	AllowHTTP bool
	// Dial makes every connection of a delivery (addr is host:port). The server gives
	// the session proxies' address policy (proxy.Dialer: public addresses only unless
	// --webhook-allow-private-networks, never the server's own ports); a refusal should
	// wrap ErrAddressRefused. nil dials anything (tests).
	Dial   func(ctx context.Context, addr string) (net.Conn, error)
	Logger *slog.Logger

	// RetryFor is how long a delivery is retried before it is failed [24h].
	RetryFor time.Duration
	// FirstRetry is the delay before the first retry, doubling after each [10s], up to
	// MaxRetry [1h]; each with ±20% jitter.
	FirstRetry, MaxRetry time.Duration
	// Timeout bounds one attempt, from connect to the answer's status [10s].
	Timeout time.Duration
	// PollInterval is how often the outbox is looked at for due deliveries besides the
	// wake-up of a new event [1s].
	PollInterval time.Duration
	// Workers is how many deliveries are sent at once [4].
	Workers int
	// Retention deletes delivered and failed deliveries this long after their event
	// [30 days].
	Retention time.Duration
	// QueueSize bounds the events waiting to be written to the outbox [4096].
	QueueSize int
}

// Service serves /v1/webhooks and delivers events. Create it with New, Start it, and
// Close it after the Manager (whose ends it takes).
type Service struct {
	cfg    Config
	st     Store
	seal   *sealer
	log    *slog.Logger
	client *client

	mu      sync.RWMutex    // guards closed against Emit
	closed  bool            // Close began: events is closed
	events  chan bb.Event   // Emit → the outbox writer
	wake    chan struct{}   // an event was written: look at the outbox now
	dropped atomic.Int64    // events Emit could not queue
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	writer  sync.WaitGroup // writeLoop
	loop    sync.WaitGroup // deliverLoop
	started bool
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhooks: Config.Store is required")
	}
	seal, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryFor, 24*time.Hour)
	def(&cfg.FirstRetry, 10*time.Second)
	def(&cfg.MaxRetry, time.Hour)
	def(&cfg.Timeout, 10*time.Second)
	def(&cfg.PollInterval, time.Second)
	def(&cfg.Retention, 30*24*time.Hour)
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = bb.NewID()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, st: cfg.Store, seal: seal, log: cfg.Logger, ctx: ctx, cancel: cancel,
		events: make(chan bb.Event, cfg.QueueSize), wake: make(chan struct{}, 1)}
	s.client = newClient(cfg.Timeout, cfg.Dial)
	return s, nil
}

// Start starts the outbox writer and the delivery loop; both end in Close.
func (s *Service) Start() {
	if s.started {
		return
	}
	s.started = true
	s.writer.Go(s.writeLoop)
	s.loop.Go(s.deliverLoop)
}

// Close stops the loops: the events still queued are written to the outbox (within
// ctx), attempts in flight end, and what is left pending is sent after the next start.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.events)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { // ends when the writer has drained the queue, or when cancel stops it
		s.writer.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.cancel() // the delivery loop returns once its attempts in flight end (Timeout)
	<-done
	s.loop.Wait()
	if n := s.dropped.Load(); n > 0 {
		return fmt.Errorf("webhooks: %d events were dropped (the outbox queue was full)", n)
	}
	return nil
}

// AllowHTTP reports whether http:// endpoints are admitted, for the request decoder.
func (s *Service) AllowHTTP() bool { return s.cfg.AllowHTTP }

// Emit queues an event for the outbox without blocking (bb.EventSink). When the queue
// is full (the database far behind) the event is dropped and logged.
func (s *Service) Emit(e bb.Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.log.Error("webhook event after close dropped", "type", string(e.Type), "session_id", e.SessionID)
		return
	}
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
		s.log.Error("webhook event dropped: the outbox queue is full", "type", string(e.Type),
			"session_id", e.SessionID, "project_id", e.ProjectID)
	}
}

// writeLoop writes queued events to the outbox, retrying a store that fails with
// backoff (1s doubling to 30s). It returns when Close has closed the queue and it is
// drained, or when the service's context ends.
func (s *Service) writeLoop() {
	for e := range s.events {
		we := &bb.WebhookEvent{ID: bb.NewID(), ProjectID: e.ProjectID, Type: e.Type, CreatedAt: e.At.UTC().Truncate(time.Millisecond)}
		body, err := payload(we.ID, e)
		if err != nil {
			s.log.Error("webhook event payload", "type", string(e.Type), "err", err)
			continue
		}
		we.Payload = body
		for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
			n, err := s.st.EnqueueWebhookEvent(s.ctx, we)
			if err == nil {
				if n > 0 {
					s.poke()
				}
				break
			}
			s.log.Error("write webhook event", "type", string(e.Type), "session_id", e.SessionID, "err", err)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
		}
	}
}

// poke wakes the delivery loop.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// deliverLoop sends due deliveries until the service's context ends (Close).
func (s *Service) deliverLoop() {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	sem := make(chan struct{}, s.cfg.Workers)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	lastPurge := time.Time{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		if time.Since(lastPurge) > time.Hour {
			lastPurge = time.Now()
			if n, err := s.st.PurgeWebhookDeliveries(s.ctx, time.Now().Add(-s.cfg.Retention)); err != nil {
				s.log.Warn("purge webhook deliveries", "err", err)
			} else if n > 0 {
				s.log.Info("webhook deliveries purged", "count", n)
			}
		}
		for s.ctx.Err() == nil {
			// The lease outlives an attempt: another node takes the delivery over only
			// when this one died with it.
			ds, err := s.st.ClaimWebhookDeliveries(s.ctx, s.cfg.NodeID, time.Now(), s.cfg.Timeout+time.Minute, s.cfg.Workers)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("claim webhook deliveries", "err", err)
				}
				break
			}
			for _, d := range ds {
				select {
				case sem <- struct{}{}:
				case <-s.ctx.Done():
					return
				}
				inflight.Go(func() { // ends with the attempt (Timeout)
					defer func() { <-sem }()
					s.attempt(d)
				})
			}
			if len(ds) < s.cfg.Workers {
				break
			}
		}
	}
}

// attempt sends a delivery once and records how it went.
func (s *Service) attempt(d *bb.WebhookDelivery) {
	ctx := context.WithoutCancel(s.ctx) // an attempt in flight ends by its own Timeout
	w, err := s.st.Webhook(ctx, d.WebhookID)
	if bb.CodeOf(err) == bb.CodeNotFound {
		return // deleted: its deliveries are gone with it
	} else if err != nil {
		s.log.Warn("load webhook", "webhook_id", d.WebhookID, "err", err)
		return // the lease runs out and the delivery is claimed again
	}
	secrets, err := s.secrets(w, time.Now())
	var a bb.WebhookAttempt
	if err != nil {
		a = bb.WebhookAttempt{At: time.Now().UTC(), Error: "signing secret: " + err.Error()}
		s.log.Error("webhook secret", "webhook_id", w.ID, "err", err)
	} else {
		a = s.client.send(ctx, w.Endpoint, secrets, d.EventID, d.Payload)
	}
	status, next := s.schedule(d, a)
	a.At = a.At.Truncate(time.Millisecond)
	if err := s.st.RecordWebhookAttempt(ctx, d.ID, a, status, next); err != nil {
		s.log.Error("record webhook attempt", "delivery_id", d.ID, "err", err)
		return // the lease runs out and it is sent again: at least once
	}
	lvl := slog.LevelInfo
	if status != bb.DeliveryDelivered {
		lvl = slog.LevelWarn
	}
	s.log.Log(ctx, lvl, "webhook attempt", "webhook_id", w.ID, "delivery_id", d.ID, "event_type", string(d.EventType),
		"attempt", len(d.Attempts)+1, "status_code", a.StatusCode, "err", a.Error, "delivery_status", string(status))
}

// schedule decides what follows an attempt: delivered on a 2xx, else a retry after
// FirstRetry·2^(n-1) (at most MaxRetry, ±20% jitter) and no later than RetryFor after
// the event, failed once that has passed.
func (s *Service) schedule(d *bb.WebhookDelivery, a bb.WebhookAttempt) (bb.DeliveryStatus, time.Time) {
	if a.StatusCode >= 200 && a.StatusCode < 300 {
		return bb.DeliveryDelivered, time.Time{}
	}
	deadline := d.CreatedAt.Add(s.cfg.RetryFor)
	if !a.At.Before(deadline) {
		return bb.DeliveryFailed, time.Time{}
	}
	return bb.DeliveryPending, minTime(a.At.Add(backoff(len(d.Attempts)+1, s.cfg.FirstRetry, s.cfg.MaxRetry)), deadline)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
