package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSettings is a settings table in memory, for the fast tests of the keyring; the
// e2e tests in internal/server use PostgreSQL's.
type memSettings struct {
	mu    sync.Mutex
	m     map[string][]byte
	reads int
}

func newMemSettings() *memSettings { return &memSettings{m: make(map[string][]byte)} }

func (s *memSettings) SettingOrInit(_ context.Context, name string, init []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if v, ok := s.m[name]; ok {
		return append([]byte(nil), v...), nil
	}
	s.m[name] = append([]byte(nil), init...)
	return append([]byte(nil), init...), nil
}

func (s *memSettings) SetSetting(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = append([]byte(nil), value...)
	return nil
}

const (
	nodeA = "0b7d1c58-2f3e-4a57-9c1a-6f0e7d2b9a01"
	nodeB = "5f3c2a10-8b4d-4e6f-a1b2-c3d4e5f60718"
)

// keyring returns a keyring on store whose clock is *now.
func keyring(t testing.TB, store SettingStore, now *time.Time) *Keyring {
	t.Helper()
	k, err := NewKeyring(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	k.now = func() time.Time { return *now }
	k.readAt = *now
	return k
}

func TestHopVerify(t *testing.T) {
	store := newMemSettings()
	now := time.Unix(1_800_000_000, 0)
	a, b := keyring(t, store, &now), keyring(t, store, &now)
	hop := a.Sign(nodeA, "GET", "/v1/sessions/x/logs")
	req := func(method, path, hop string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set(HopHeader, hop)
		return r
	}
	if node, err := b.Verify(req("GET", "/v1/sessions/x/logs", hop)); err != nil || node != nodeA {
		t.Fatalf("Verify(own hop) = %q, %v; want %s", node, err, nodeA)
	}
	mac := hop[strings.LastIndexByte(hop, '.')+1:]
	wrongMAC := hop[:len(hop)-len(mac)] + strings.Repeat("A", len(mac))
	cases := []struct {
		name, method, path, hop string
		at                      time.Duration
		expired                 bool
	}{
		{"other path", "GET", "/v1/sessions/y/logs", hop, 0, false},
		{"other query is the same path", "GET", "/v1/sessions/x/logs?a=1", hop, 0, true}, // accepted: see below
		{"other method", "POST", "/v1/sessions/x/logs", hop, 0, false},
		{"wrong MAC", "GET", "/v1/sessions/x/logs", wrongMAC, 0, false},
		{"other node", "GET", "/v1/sessions/x/logs", nodeB + hop[len(nodeA):], 0, false},
		{"expired", "GET", "/v1/sessions/x/logs", hop, 61 * time.Second, true},
		{"from the future", "GET", "/v1/sessions/x/logs", hop, -61 * time.Second, true},
		{"empty", "GET", "/v1/sessions/x/logs", "", 0, false},
		{"garbage", "GET", "/v1/sessions/x/logs", "not a hop", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = time.Unix(1_800_000_000, 0).Add(c.at)
			defer func() { now = time.Unix(1_800_000_000, 0) }()
			_, err := b.Verify(req(c.method, c.path, c.hop))
			if c.name == "other query is the same path" {
				if err != nil { // the MAC covers the path; the query is the owner's to check
					t.Errorf("Verify = %v; want ok", err)
				}
				return
			}
			if !errors.Is(err, ErrBadHop) {
				t.Errorf("Verify = %v; want ErrBadHop", err)
			}
			if errors.Is(err, ErrHopExpired) != c.expired {
				t.Errorf("Verify = %v; expired = %v", err, c.expired)
			}
		})
	}
	t.Run("two headers", func(t *testing.T) {
		r := req("GET", "/v1/sessions/x/logs", hop)
		r.Header.Add(HopHeader, hop)
		if _, err := b.Verify(r); err == nil {
			t.Error("Verify accepted two hop headers")
		}
	})
	t.Run("within skew", func(t *testing.T) {
		now = time.Unix(1_800_000_000, 0).Add(59 * time.Second)
		defer func() { now = time.Unix(1_800_000_000, 0) }()
		if _, err := b.Verify(req("GET", "/v1/sessions/x/logs", hop)); err != nil {
			t.Errorf("Verify 59 s later = %v; want ok", err)
		}
	})
	t.Run("another cluster's secret", func(t *testing.T) {
		other := keyring(t, newMemSettings(), &now)
		if _, err := other.Verify(req("GET", "/v1/sessions/x/logs", hop)); !errors.Is(err, ErrBadHop) {
			t.Errorf("Verify under another secret = %v; want ErrBadHop", err)
		}
	})
}

// TestHopRotation rotates the secret: hops made with the old one verify for a minute
// after the rotation, then not; a node that has not re-read the secret yet verifies a
// hop made with the new one by re-reading (at most every refreshOnFailure).
func TestHopRotation(t *testing.T) {
	store := newMemSettings()
	now := time.Unix(1_800_000_000, 0)
	a, b := keyring(t, store, &now), keyring(t, store, &now)
	oldHop := a.Sign(nodeA, "GET", "/connect")
	verify := func(k *Keyring, hop string) error {
		r := httptest.NewRequest("GET", "/connect?signingKey=x", nil)
		r.Header.Set(HopHeader, hop)
		_, err := k.Verify(r)
		return err
	}
	if err := Rotate(t.Context(), store, now); err != nil {
		t.Fatal(err)
	}
	// a re-reads now (its Run would within RefreshInterval); b has not yet.
	if err := a.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	newHop := a.Sign(nodeA, "GET", "/connect")
	if newHop == oldHop {
		t.Fatal("the rotation did not change the MAC")
	}
	now = now.Add(refreshOnFailure) // b last read the store that long ago
	if err := verify(b, newHop); err != nil {
		t.Errorf("a node that had not re-read the secret refused a hop under the new one: %v", err)
	}
	if err := verify(a, oldHop); err != nil {
		t.Errorf("a hop under the previous secret, %v after the rotation: %v; want ok", refreshOnFailure, err)
	}
	now = time.Unix(1_800_000_000, 0).Add(previousGrace)
	fresh := a.Sign(nodeA, "GET", "/connect") // a hop of now, under the new secret
	if err := verify(b, fresh); err != nil {
		t.Errorf("hop under the new secret: %v", err)
	}
	// Re-made under the old secret with a fresh time: refused once the grace is over.
	a.mu.Lock()
	cur := a.current
	a.current = a.previous
	a.mu.Unlock()
	stale := a.Sign(nodeA, "GET", "/connect")
	a.mu.Lock()
	a.current = cur
	a.mu.Unlock()
	if err := verify(b, stale); !errors.Is(err, ErrBadHop) {
		t.Errorf("a hop under the previous secret a minute after the rotation = %v; want ErrBadHop", err)
	}
}

// TestRefreshOnFailureIsBounded checks that hops that do not verify make the keyring
// read the store at most once per refreshOnFailure: a stranger cannot make a node hammer
// its database.
func TestRefreshOnFailureIsBounded(t *testing.T) {
	store := newMemSettings()
	now := time.Unix(1_800_000_000, 0)
	k := keyring(t, store, &now)
	before := store.reads
	for range 100 {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(HopHeader, nodeA+"."+"1800000000."+strings.Repeat("A", 43))
		if _, err := k.Verify(r); err == nil {
			t.Fatal("a forged hop verified")
		}
	}
	if got := store.reads - before; got != 0 {
		t.Errorf("%d reads within refreshOnFailure of the last; want 0", got)
	}
	now = now.Add(refreshOnFailure)
	for range 100 {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(HopHeader, nodeA+"."+"1800000002."+strings.Repeat("A", 43))
		k.Verify(r)
	}
	if got := store.reads - before; got != 2 { // one refresh reads both settings
		t.Errorf("%d reads for 100 forged hops; want 2 (one refresh)", got)
	}
}

func TestParseHop(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := keyring(t, newMemSettings(), &now)
	h, err := ParseHop(k.Sign(nodeA, "GET", "/"))
	if err != nil || h.Node != nodeA || h.Time != now.Unix() || len(h.MAC) != 32 {
		t.Fatalf("ParseHop(Sign) = %+v, %v", h, err)
	}
	for _, bad := range []string{
		"", ".", "..", nodeA, nodeA + ".1", nodeA + ".1.", "x.1." + strings.Repeat("A", 43),
		nodeA + ".-1." + strings.Repeat("A", 43), nodeA + ".+1." + strings.Repeat("A", 43),
		nodeA + ".1." + strings.Repeat("A", 42), nodeA + ".1." + strings.Repeat("A", 44),
		nodeA + ".1." + strings.Repeat("A", 42) + "=", nodeA + ".1." + strings.Repeat("A", 43) + ".x",
		nodeA + ".9999999999999." + strings.Repeat("A", 43), strings.Repeat("x", 300),
	} {
		if _, err := ParseHop(bad); !errors.Is(err, ErrBadHop) {
			t.Errorf("ParseHop(%q) = %v; want ErrBadHop", bad, err)
		}
	}
}

func FuzzParseHop(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k := &Keyring{now: func() time.Time { return now }, current: make([]byte, 32), readAt: now} // never re-reads
	f.Add(k.Sign(nodeA, "GET", "/"))
	f.Add(nodeA + ".1." + strings.Repeat("A", 43))
	f.Add("")
	f.Add("a.b.c.d")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseHop(v)
		if err != nil {
			if !errors.Is(err, ErrBadHop) {
				t.Fatalf("ParseHop(%q) = %v; want ErrBadHop", v, err)
			}
			return
		}
		if len(h.MAC) != 32 || len(v) > maxHopLen || h.Time < 0 {
			t.Fatalf("ParseHop(%q) = %+v", v, h)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(HopHeader, v)
		if _, err := k.Verify(r); err == nil && v != k.Sign(nodeA, "GET", "/") {
			t.Fatalf("Verify accepted %q", v)
		}
	})
}
