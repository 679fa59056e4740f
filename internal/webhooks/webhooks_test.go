package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/postgres/pgtest"
	"github.com/browserd/browserd/internal/proxy"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/webhooks"
)

// testKey seals the secrets in the tests.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// opener opens the same database again (a restart).
type opener func(t *testing.T) webhooks.Store

// backends returns a real SQLite store and, when PostgreSQL is installed (or
// BROWSERD_REQUIRE_POSTGRES=1 demands it), a real PostgreSQL one.
func backends(t *testing.T) map[string]opener {
	path := filepath.Join(t.TempDir(), "browserd.db")
	out := map[string]opener{"sqlite": func(t *testing.T) webhooks.Store {
		db, err := sqlite.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
	if pgtest.Bin() != "" || os.Getenv("BROWSERD_REQUIRE_POSTGRES") == "1" || os.Getenv("BROWSERD_TEST_POSTGRES_URL") != "" {
		c := pgtest.Start(t)
		url := c.NewDatabase(t)
		out["postgres"] = func(t *testing.T) webhooks.Store {
			db, err := postgres.Open(t.Context(), url, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
	return out
}

// project creates a project in st (both stores have CreateProject).
func project(t testing.TB, st webhooks.Store) string {
	t.Helper()
	p := &bb.Project{ID: bb.NewID(), Name: "p", DefaultTimeout: 300, Concurrency: 5, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.(bb.ProjectStore).CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// receiver is a real HTTP endpoint that verifies every delivery with the secret it is
// given and hands on the verified bodies. While down it answers 503.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	down   bool
	got    chan map[string]any
	hits   chan int // the status of every request it answered
	header chan http.Header
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: make(chan map[string]any, 100), hits: make(chan int, 1000), header: make(chan http.Header, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) set(secret string, down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret, r.down = secret, down
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret, down := r.secret, r.down
	r.mu.Unlock()
	status := http.StatusNoContent
	switch {
	case down:
		status = http.StatusServiceUnavailable
	case webhooks.Verify(secret, req.Header, body, time.Now(), 5*time.Minute) != nil:
		status = http.StatusUnauthorized
	}
	w.WriteHeader(status)
	select {
	case r.hits <- status:
	default: // nobody is counting any more
	}
	if status == http.StatusNoContent {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			r.t.Errorf("delivery body is not JSON: %v", err)
		}
		r.header <- req.Header.Clone()
		r.got <- m
	}
}

// wait returns the next verified event, failing after a minute (a hang guard, not a
// timing assertion).
func (r *receiver) wait(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(time.Minute):
		t.Fatal("no verified delivery arrived")
		return nil
	}
}

// waitStatus waits for a request answered with status.
func (r *receiver) waitStatus(t *testing.T, status int) {
	t.Helper()
	for {
		select {
		case s := <-r.hits:
			if s == status {
				return
			}
		case <-time.After(time.Minute):
			t.Fatalf("no request answered %d", status)
		}
	}
}

// fastConfig retries quickly, so that tests wait for events rather than the clock.
func fastConfig(st webhooks.Store) webhooks.Config {
	return webhooks.Config{Store: st, Key: testKey, AllowHTTP: true, FirstRetry: 20 * time.Millisecond,
		MaxRetry: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond, Timeout: 5 * time.Second}
}

func start(t testing.TB, cfg webhooks.Config) *webhooks.Service {
	t.Helper()
	s, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close(t.Context()) })
	return s
}

func create(t *testing.T, s *webhooks.Service, projectID, endpoint string, types ...bb.EventType) (*bb.Webhook, string) {
	t.Helper()
	w, secret, err := s.CreateWebhook(t.Context(), projectID, bb.WebhookRequest{Endpoint: &endpoint, EventTypes: types})
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	if !strings.HasPrefix(secret, webhooks.SecretPrefix) {
		t.Fatalf("secret %q lacks the whsec_ prefix", secret)
	}
	return w, secret
}

func ended(projectID string) bb.Event {
	at := time.Now().UTC().Truncate(time.Millisecond)
	return bb.Event{Type: bb.EventSessionEnded, ProjectID: projectID, SessionID: "s1", At: at,
		Session: &bb.Session{ID: "s1", ProjectID: projectID, Status: bb.StatusTimedOut, EndReason: "timeout",
			CreatedAt: at, StartedAt: at, EndedAt: at, ExpiresAt: at, Region: bb.RegionUSWest2}}
}

// TestDelivery: a subscribed event arrives signed, with its final status and reason; an
// unsubscribed one does not; the delivery and its attempt are listed.
func TestDelivery(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			pid := project(t, st)
			rcv := newReceiver(t)
			s := start(t, fastConfig(st))
			w, secret := create(t, s, pid, rcv.srv.URL+"/hook", bb.EventSessionEnded)
			rcv.set(secret, false)
			s.Emit(bb.Event{Type: bb.EventSessionCreated, ProjectID: pid, SessionID: "s1", At: time.Now(), Session: &bb.Session{ID: "s1"}})
			s.Emit(ended(pid))
			m := rcv.wait(t)
			data, _ := m["data"].(map[string]any)
			if m["type"] != "sessions.ended" || m["projectId"] != pid || data["status"] != "TIMED_OUT" || data["reason"] != "timeout" || data["sessionId"] != "s1" {
				t.Errorf("event = %v; want sessions.ended of s1, TIMED_OUT, timeout", m)
			}
			h := <-rcv.header
			if h.Get(webhooks.HeaderID) != m["id"] || strings.Count(h.Get(webhooks.HeaderSignature), "v1,") != 1 {
				t.Errorf("headers = %v; want webhook-id = the event id and one signature", h)
			}
			ds, next, err := s.WebhookDeliveries(t.Context(), pid, w.ID, nil, 10)
			if err != nil || next != nil || len(ds) != 1 {
				t.Fatalf("WebhookDeliveries = %d, %v, %v; want 1 (created is not subscribed)", len(ds), next, err)
			}
			// The attempt is recorded just after the answer: look until it is.
			for d := ds[0]; d.Status != bb.DeliveryDelivered; d = ds[0] {
				time.Sleep(5 * time.Millisecond)
				ds, _, _ = s.WebhookDeliveries(t.Context(), pid, w.ID, nil, 10)
			}
			if a := ds[0].Attempts; len(a) != 1 || a[0].StatusCode != 204 || a[0].Error != "" {
				t.Errorf("attempts = %+v; want one 204", a)
			}
			if _, _, err := s.WebhookDeliveries(t.Context(), bb.NewID(), w.ID, nil, 10); bb.CodeOf(err) != bb.CodeNotFound {
				t.Errorf("WebhookDeliveries(other project) = %v; want CodeNotFound", err)
			}
		})
	}
}

// TestReceiverDown: a receiver that refuses connections, then answers 503, then comes
// back gets the event; every failed attempt is listed.
func TestReceiverDown(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			pid := project(t, st)
			// Reserve an address, and close it: connections are refused.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			s := start(t, fastConfig(st))
			w, secret := create(t, s, pid, "http://"+addr+"/hook", bb.EventSessionEnded)
			s.Emit(ended(pid))
			waitAttempts(t, s, pid, w.ID, 2)

			rcv := &receiver{t: t, got: make(chan map[string]any, 10), hits: make(chan int, 1000), header: make(chan http.Header, 10)}
			rcv.set(secret, true)
			ln, err = net.Listen("tcp", addr)
			if err != nil {
				t.Skipf("the port was taken meanwhile: %v", err)
			}
			rcv.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(rcv.serve)}}
			rcv.srv.Start()
			t.Cleanup(rcv.srv.Close)
			rcv.waitStatus(t, http.StatusServiceUnavailable)
			rcv.set(secret, false)
			if m := rcv.wait(t); m["type"] != "sessions.ended" {
				t.Errorf("event = %v", m)
			}
			d := waitStatus(t, s, pid, w.ID, bb.DeliveryDelivered)
			var refused, unavailable int
			for _, a := range d.Attempts {
				switch {
				case a.StatusCode == 0 && strings.Contains(a.Error, "refused"):
					refused++
				case a.StatusCode == 503:
					unavailable++
				}
			}
			if refused < 2 || unavailable < 1 || d.Attempts[len(d.Attempts)-1].StatusCode != 204 {
				t.Errorf("attempts = %+v; want ≥2 refused, ≥1 503, then 204", d.Attempts)
			}
		})
	}
}

// TestRestart: a delivery pending when the service (the server) stops is sent by the
// next one, from the durable outbox.
func TestRestart(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			pid := project(t, st)
			rcv := newReceiver(t)
			s1, err := webhooks.New(fastConfig(st))
			if err != nil {
				t.Fatal(err)
			}
			s1.Start()
			w, secret := create(t, s1, pid, rcv.srv.URL, bb.EventSessionEnded)
			rcv.set(secret, true)
			s1.Emit(ended(pid))
			waitAttempts(t, s1, pid, w.ID, 1)
			if err := s1.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			rcv.set(secret, false)

			st2 := open(t) // the same database, opened again
			s2 := start(t, fastConfig(st2))
			if m := rcv.wait(t); m["type"] != "sessions.ended" {
				t.Errorf("event = %v", m)
			}
			waitStatus(t, s2, pid, w.ID, bb.DeliveryDelivered)
		})
	}
}

// TestGiveUp: a delivery that never gets a 2xx is failed once RetryFor has passed.
func TestGiveUp(t *testing.T) {
	st := backends(t)["sqlite"](t)
	pid := project(t, st)
	rcv := newReceiver(t)
	cfg := fastConfig(st)
	cfg.RetryFor = 200 * time.Millisecond
	s := start(t, cfg)
	w, secret := create(t, s, pid, rcv.srv.URL, bb.EventSessionEnded)
	rcv.set(secret, true)
	s.Emit(ended(pid))
	d := waitStatus(t, s, pid, w.ID, bb.DeliveryFailed)
	last := d.Attempts[len(d.Attempts)-1]
	if len(d.Attempts) < 2 || last.StatusCode != 503 || !d.NextAttemptAt.IsZero() {
		t.Errorf("failed delivery = %+v", d)
	}
	if !last.At.Add(time.Millisecond).After(d.CreatedAt.Add(cfg.RetryFor)) {
		t.Errorf("last attempt at %v, before the end of the retry window %v", last.At, d.CreatedAt.Add(cfg.RetryFor))
	}
}

// TestRotate: after a rotation both secrets verify for the overlap; revoking at once
// leaves only the new one.
func TestRotate(t *testing.T) {
	st := backends(t)["sqlite"](t)
	pid := project(t, st)
	rcv := newReceiver(t)
	s := start(t, fastConfig(st))
	w, old := create(t, s, pid, rcv.srv.URL, bb.EventSessionEnded)
	secret, err := s.RotateWebhookSecret(t.Context(), pid, w.ID, false)
	if err != nil || secret == old {
		t.Fatalf("RotateWebhookSecret = %q, %v", secret, err)
	}
	rcv.set(old, false) // a receiver not updated yet still verifies
	s.Emit(ended(pid))
	rcv.wait(t)
	if h := <-rcv.header; strings.Count(h.Get(webhooks.HeaderSignature), "v1,") != 2 {
		t.Errorf("signature header %q; want two signatures during the overlap", h.Get(webhooks.HeaderSignature))
	}
	newer, err := s.RotateWebhookSecret(t.Context(), pid, w.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	rcv.set(newer, false)
	s.Emit(ended(pid))
	rcv.wait(t)
	h := <-rcv.header
	if strings.Count(h.Get(webhooks.HeaderSignature), "v1,") != 1 {
		t.Errorf("signature header %q; want one signature after revokeImmediately", h.Get(webhooks.HeaderSignature))
	}
	if _, err := s.RotateWebhookSecret(t.Context(), bb.NewID(), w.ID, false); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("RotateWebhookSecret(other project) = %v; want CodeNotFound", err)
	}
}

// TestProjects: a webhook belongs to its project alone. With another project's id every
// call about it is CodeNotFound (the API's 404), that project lists none, and the
// webhook is unchanged after all of them.
func TestProjects(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			a, b := project(t, st), project(t, st)
			s := start(t, fastConfig(st))
			w, _ := create(t, s, a, "http://127.0.0.1:9/hooks", bb.EventSessionEnded)
			before, err := s.Webhook(t.Context(), a, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			other := "http://127.0.0.1:9/taken-over"
			for _, c := range []struct {
				name string
				call func() error
			}{
				{"Webhook", func() error { _, err := s.Webhook(t.Context(), b, w.ID); return err }},
				{"UpdateWebhook", func() error {
					_, err := s.UpdateWebhook(t.Context(), b, w.ID, bb.WebhookRequest{Endpoint: &other})
					return err
				}},
				{"RotateWebhookSecret", func() error { _, err := s.RotateWebhookSecret(t.Context(), b, w.ID, true); return err }},
				{"WebhookDeliveries", func() error { _, _, err := s.WebhookDeliveries(t.Context(), b, w.ID, nil, 10); return err }},
				{"DeleteWebhook", func() error { return s.DeleteWebhook(t.Context(), b, w.ID) }}, // last: were it allowed, the others would find nothing
			} {
				if err := c.call(); bb.CodeOf(err) != bb.CodeNotFound {
					t.Errorf("%s as another project = %v; want CodeNotFound", c.name, err)
				}
			}
			if list, _, err := s.Webhooks(t.Context(), b, nil, 10); err != nil || len(list) != 0 {
				t.Errorf("Webhooks of the other project = %v, %v; want none", list, err)
			}
			after, err := s.Webhook(t.Context(), a, w.ID)
			if err != nil {
				t.Fatalf("the webhook after the other project's calls: %v", err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("the webhook changed with the other project's calls (-before +after):\n%s", diff)
			}
		})
	}
}

// TestAddressPolicy: a connection to an address CheckAddr refuses is never made; the
// attempt says why and the delivery stays pending.
func TestAddressPolicy(t *testing.T) {
	st := backends(t)["sqlite"](t)
	pid := project(t, st)
	rcv := newReceiver(t)
	cfg := fastConfig(st)
	// The session proxies' policy (what the server gives): loopback is not public.
	policy := proxy.NewDialer(proxy.Config{})
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := policy.Dial(ctx, nil, addr)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", webhooks.ErrAddressRefused, err)
		}
		return c, nil
	}
	s := start(t, cfg)
	w, secret := create(t, s, pid, rcv.srv.URL, bb.EventSessionEnded)
	rcv.set(secret, false)
	s.Emit(ended(pid))
	d := waitAttempts(t, s, pid, w.ID, 1)
	if a := d.Attempts[0]; a.StatusCode != 0 || !strings.Contains(a.Error, "address policy") || !strings.Contains(a.Error, "loopback") {
		t.Errorf("attempt = %+v; want refused by the address policy", a)
	}
	if len(rcv.hits) != 0 {
		t.Errorf("the receiver got %d requests; want none", len(rcv.hits))
	}
}

// waitAttempts waits until the webhook's newest delivery has at least n attempts.
func waitAttempts(t *testing.T, s *webhooks.Service, pid, id string, n int) *bb.WebhookDelivery {
	t.Helper()
	return waitFor(t, s, pid, id, func(d *bb.WebhookDelivery) bool { return len(d.Attempts) >= n }, fmt.Sprintf("%d attempts", n))
}

// waitStatus waits until the webhook's newest delivery has a status.
func waitStatus(t *testing.T, s *webhooks.Service, pid, id string, want bb.DeliveryStatus) *bb.WebhookDelivery {
	t.Helper()
	return waitFor(t, s, pid, id, func(d *bb.WebhookDelivery) bool { return d.Status == want }, string(want))
}

func waitFor(t *testing.T, s *webhooks.Service, pid, id string, ok func(*bb.WebhookDelivery) bool, what string) *bb.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard
	for {
		ds, _, err := s.WebhookDeliveries(t.Context(), pid, id, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ok(ds[0]) {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery never had %s: %+v", what, ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
