package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Headers of node-to-node requests (docs/ARCHITECTURE.md "Cluster"). A client never gets
// to set one: the forwarder strips every X-Browserd-* header of a request that is not a
// verified hop.
const (
	// HopHeader authenticates a request one node forwards to another: NODE.UNIXTIME.MAC.
	HopHeader = "X-Browserd-Hop"
	// PlacedHeader marks a create that a node placed on another (with a HopHeader).
	PlacedHeader = "X-Browserd-Placed"
	// NodeFullHeader marks a 429 (or a low disk's 503) that says "this node is full",
	// not "the project is": the placing node tries the next candidate.
	NodeFullHeader = "X-Browserd-Node-Full"
	// headerPrefix starts every header above; clients' ones are dropped.
	headerPrefix = "X-Browserd-"
)

// Settings the cluster secret is kept under, in the shared database.
const (
	// SettingSecret is the current cluster secret (32 random bytes), made on first start.
	SettingSecret = "cluster-secret"
	// SettingPreviousSecret is the one before the last rotation: 8 bytes of the unix
	// time (big endian) until which it is still accepted, then the secret. Empty: none.
	SettingPreviousSecret = "cluster-secret-previous"
)

const (
	// hopSkew is how far a hop's time may be from the receiver's clock, either way.
	hopSkew = 60 * time.Second
	// previousGrace is how long a rotated-out secret stays valid: nodes re-read the
	// secret more often than that (RefreshInterval), so no hop in flight is refused.
	previousGrace = time.Minute
	// RefreshInterval is how often Keyring.Run re-reads the secret.
	RefreshInterval = 10 * time.Second
	// refreshOnFailure is how often at most a hop that does not verify makes the
	// keyring re-read the secret (a peer may have seen a rotation first).
	refreshOnFailure = 2 * time.Second
	secretLen        = 32
	maxHopLen        = 200
)

// ErrBadHop is the cause of every refused hop header; the message says no more than
// "invalid" or "expired" (it is shown to whoever sent it).
var ErrBadHop = errors.New("cluster: invalid hop header")

// ErrHopExpired is a hop whose time is too far from the receiver's clock.
var ErrHopExpired = fmt.Errorf("%w: expired", ErrBadHop)

// SettingStore is where the cluster secret is kept: the shared database's settings.
// *postgres.DB implements it.
type SettingStore interface {
	SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error)
}

// SettingWriter replaces a setting; only the rotation needs it.
type SettingWriter interface {
	SettingStore
	SetSetting(ctx context.Context, name string, value []byte) error
}

// Keyring holds the cluster secret a node signs and verifies hops with, re-read from the
// store so that a rotation reaches every node without a restart.
type Keyring struct {
	store SettingStore
	now   func() time.Time

	mu        sync.Mutex
	current   []byte
	previous  []byte    // nil: none
	prevUntil time.Time // previous is valid before it
	readAt    time.Time // last read from the store
}

// NewKeyring reads the cluster secret, making it on the cluster's first start.
func NewKeyring(ctx context.Context, store SettingStore) (*Keyring, error) {
	k := &Keyring{store: store, now: time.Now}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Refresh re-reads the secrets from the store.
func (k *Keyring) Refresh(ctx context.Context) error {
	cur, err := k.store.SettingOrInit(ctx, SettingSecret, randomSecret())
	if err != nil {
		return fmt.Errorf("read cluster secret: %w", err)
	}
	if len(cur) < secretLen {
		return fmt.Errorf("cluster secret is %d bytes; want %d", len(cur), secretLen)
	}
	prev, err := k.store.SettingOrInit(ctx, SettingPreviousSecret, []byte{})
	if err != nil {
		return fmt.Errorf("read previous cluster secret: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current = cur
	k.previous, k.prevUntil = nil, time.Time{}
	if len(prev) >= 8+secretLen {
		k.previous = prev[8:]
		k.prevUntil = time.Unix(int64(binary.BigEndian.Uint64(prev[:8])), 0)
	}
	k.readAt = k.now()
	return nil
}

// Run re-reads the secret every interval until ctx ends; a failed read keeps the secret
// it has (the database may be restarting) and is reported to logf.
func (k *Keyring) Run(ctx context.Context, interval time.Duration, logf func(err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
				logf(err)
			}
		}
	}
}

// Rotate replaces the cluster secret with a new random one; the old one stays valid for
// previousGrace from now. Nodes pick the new one up within RefreshInterval.
func Rotate(ctx context.Context, store SettingWriter, now time.Time) error {
	cur, err := store.SettingOrInit(ctx, SettingSecret, randomSecret())
	if err != nil {
		return fmt.Errorf("read cluster secret: %w", err)
	}
	// The previous one first: a node that reads between the two writes accepts the
	// current secret twice, and nothing it should not.
	prev := binary.BigEndian.AppendUint64(nil, uint64(now.Add(previousGrace).Unix()))
	if err := store.SetSetting(ctx, SettingPreviousSecret, append(prev, cur...)); err != nil {
		return fmt.Errorf("store previous cluster secret: %w", err)
	}
	if err := store.SetSetting(ctx, SettingSecret, randomSecret()); err != nil {
		return fmt.Errorf("store cluster secret: %w", err)
	}
	return nil
}

func randomSecret() []byte {
	b := make([]byte, secretLen)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// Sign returns the HopHeader value with which node sends method path now.
func (k *Keyring) Sign(node, method, path string) string {
	return k.SignAt(node, method, path, k.now())
}

// SignAt is Sign at another time: a hop made then (tests of expiry).
func (k *Keyring) SignAt(node, method, path string, at time.Time) string {
	k.mu.Lock()
	secret := k.current
	k.mu.Unlock()
	t := at.Unix()
	return node + "." + strconv.FormatInt(t, 10) + "." + base64.RawURLEncoding.EncodeToString(hopMAC(secret, node, t, method, path))
}

// hopMAC is the MAC of a hop: HMAC-SHA256 over a purpose, node, time, method and path,
// each field ended by a NUL (none of them may contain one).
func hopMAC(secret []byte, node string, t int64, method, path string) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{"browserd-hop", node, strconv.FormatInt(t, 10), method, path} {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Hop is a parsed HopHeader, not yet verified.
type Hop struct {
	Node string
	Time int64 // unix seconds
	MAC  []byte
}

// ParseHop parses a HopHeader value: a node id, a unix time and a base64url MAC of 32
// bytes, separated by dots.
func ParseHop(v string) (Hop, error) {
	if len(v) > maxHopLen {
		return Hop{}, ErrBadHop
	}
	node, rest, ok := strings.Cut(v, ".")
	if !ok || !bb.ValidID(node) {
		return Hop{}, ErrBadHop
	}
	ts, mac64, ok := strings.Cut(rest, ".")
	if !ok || ts == "" || len(ts) > 12 || strings.TrimLeft(ts, "0123456789") != "" {
		return Hop{}, ErrBadHop
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Hop{}, ErrBadHop
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(mac64)
	if err != nil || len(mac) != sha256.Size {
		return Hop{}, ErrBadHop
	}
	return Hop{Node: node, Time: t, MAC: mac}, nil
}

// Verify checks r's HopHeader: made under the current secret (or the previous one during
// its grace) for r's method and path, within hopSkew of now. It returns the sending node.
// A hop that fails makes the keyring re-read the secret (at most every
// refreshOnFailure) and try again, for a rotation a peer saw first.
func (k *Keyring) Verify(r *http.Request) (node string, err error) {
	vs := r.Header.Values(HopHeader)
	if len(vs) != 1 {
		return "", ErrBadHop
	}
	h, err := ParseHop(vs[0])
	if err != nil {
		return "", err
	}
	now := k.now()
	if d := now.Sub(time.Unix(h.Time, 0)); d > hopSkew || d < -hopSkew {
		return "", ErrHopExpired
	}
	path := r.URL.EscapedPath()
	if k.check(h, r.Method, path, now) {
		return h.Node, nil
	}
	k.mu.Lock()
	stale := now.Sub(k.readAt) >= refreshOnFailure
	k.mu.Unlock()
	if stale && k.Refresh(r.Context()) == nil && k.check(h, r.Method, path, now) {
		return h.Node, nil
	}
	return "", ErrBadHop
}

// check compares h's MAC with those of the secrets valid now.
func (k *Keyring) check(h Hop, method, path string, now time.Time) bool {
	k.mu.Lock()
	cur, prev, until := k.current, k.previous, k.prevUntil
	k.mu.Unlock()
	if hmac.Equal(h.MAC, hopMAC(cur, h.Node, h.Time, method, path)) {
		return true
	}
	return prev != nil && now.Before(until) && hmac.Equal(h.MAC, hopMAC(prev, h.Node, h.Time, method, path))
}
