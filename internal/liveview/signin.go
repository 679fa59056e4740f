package liveview

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// cookieName names the dashboard's sign-in cookie. It holds the sign-in sealed
// (AES-256-GCM) with a key kept in the database: the API key in it is unreadable to the
// browser's scripts (HttpOnly) and to anyone who copies the cookie, and every node of a
// cluster, or the server after a restart, opens it.
const cookieName = "browserd_signin"

// Settings where the sign-ins' shared state is kept, in the database's settings.
const (
	// settingSigninKey is the 32-byte key cookies are sealed with, made on first use.
	settingSigninKey = "dashboard-signin-key"
	// settingSignoutPrefix + the hex SHA-256 of an API key holds the time (unix nanos,
	// 8 bytes big endian) of that key's last dashboard sign-out: sign-ins made with the
	// key before it are over, on every node.
	settingSignoutPrefix = "dashboard-signout:"
)

// SettingStore keeps the server-wide settings the sign-ins share (the store's settings
// table; every node of a cluster reads the same). *sqlite.DB and *postgres.DB satisfy it.
type SettingStore interface {
	SettingOrInit(ctx context.Context, name string, init []byte) ([]byte, error)
	SetSetting(ctx context.Context, name string, value []byte) error
}

// signin is one dashboard sign-in, as its cookie carries it. The API key is kept so that
// every request authenticates again: a revoked key signs the dashboard out.
type signin struct {
	apiKey  string
	csrf    string // the token every form of this sign-in posts back
	issued  int64  // unix nanos
	expires int64  // unix seconds
}

// sealedSignin is a signin as its cookie seals it.
type sealedSignin struct {
	APIKey  string `json:"k"`
	CSRF    string `json:"c"`
	Issued  int64  `json:"i"`
	Expires int64  `json:"e"`
}

// maxCookie bounds a sign-in cookie read: sealed sign-ins are a few hundred bytes.
const maxCookie = 2048

// signoutCacheTTL is how long a node trusts its copy of a key's last sign-out time:
// a sign-out on another node takes effect here within it.
const signoutCacheTTL = 2 * time.Second

// signins seals and opens sign-in cookies. Nothing is kept per sign-in: the server
// keeps only the sealing key and each API key's last sign-out time (bounded by the
// number of keys), so no number of sign-ins costs it memory (security review F13).
type signins struct {
	ttl      time.Duration
	sealer   *bb.Sealer
	settings SettingStore

	mu       sync.Mutex
	signouts map[string]signout // by settingSignoutPrefix name
}

type signout struct {
	at   int64     // unix nanos; 0: never
	read time.Time // when this copy was read from the settings
}

// newSignins reads (or makes) the sealing key from settings.
func newSignins(ctx context.Context, ttl time.Duration, settings SettingStore) (*signins, error) {
	init := make([]byte, 32)
	rand.Read(init)
	key, err := settings.SettingOrInit(ctx, settingSigninKey, init)
	if err != nil {
		return nil, fmt.Errorf("read the dashboard's sign-in key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the dashboard's sign-in key (setting %s) is %d bytes; want 32", settingSigninKey, len(key))
	}
	sealer, err := bb.NewSealer(key)
	if err != nil {
		return nil, err
	}
	return &signins{ttl: ttl, sealer: sealer, settings: settings, signouts: make(map[string]signout)}, nil
}

// create seals a new sign-in of apiKey and returns its cookie value.
func (ss *signins) create(apiKey string, now time.Time) (cookie string, si *signin) {
	si = &signin{apiKey: apiKey, csrf: rand.Text(), issued: now.UnixNano(), expires: now.Add(ss.ttl).Unix()}
	plain, _ := json.Marshal(sealedSignin{si.apiKey, si.csrf, si.issued, si.expires}) // cannot fail
	return base64.RawURLEncoding.EncodeToString(ss.sealer.Seal(plain, []byte(cookieName))), si
}

// open returns the sign-in a cookie seals, whatever its age, or an error.
func (ss *signins) open(cookie string) (*signin, error) {
	if cookie == "" || len(cookie) > maxCookie {
		return nil, errors.New("no sign-in cookie")
	}
	sealed, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		return nil, errors.New("malformed sign-in cookie")
	}
	plain, err := ss.sealer.Open(sealed, []byte(cookieName))
	if err != nil {
		return nil, errors.New("sign-in cookie not sealed by this server")
	}
	var si sealedSignin
	if err := json.Unmarshal(plain, &si); err != nil || si.APIKey == "" || si.CSRF == "" {
		return nil, errors.New("sign-in cookie holds no sign-in")
	}
	return &signin{apiKey: si.APIKey, csrf: si.CSRF, issued: si.Issued, expires: si.Expires}, nil
}

// get returns the live sign-in of a cookie: sealed by this cluster, not expired, and
// made after its key's last sign-out. Otherwise (or when the sign-out time cannot be
// read: fail closed) nil.
func (ss *signins) get(ctx context.Context, cookie string, now time.Time) *signin {
	si, err := ss.open(cookie)
	if err != nil || now.Unix() >= si.expires {
		return nil
	}
	out, err := ss.signedOut(ctx, si.apiKey, now)
	if err != nil || si.issued <= out {
		return nil
	}
	return si
}

// remove signs out every sign-in of the cookie's API key, on every node.
func (ss *signins) remove(ctx context.Context, cookie string, now time.Time) error {
	si, err := ss.open(cookie)
	if err != nil {
		return nil // nothing to sign out
	}
	name := signoutSetting(si.apiKey)
	at := now.UnixNano()
	if err := ss.settings.SetSetting(ctx, name, binary.BigEndian.AppendUint64(nil, uint64(at))); err != nil {
		return fmt.Errorf("record the sign-out: %w", err)
	}
	ss.mu.Lock()
	ss.signouts[name] = signout{at: at, read: now}
	ss.mu.Unlock()
	return nil
}

// signedOut returns the time (unix nanos) of apiKey's last sign-out, 0 if none, from a
// copy at most signoutCacheTTL old.
func (ss *signins) signedOut(ctx context.Context, apiKey string, now time.Time) (int64, error) {
	name := signoutSetting(apiKey)
	ss.mu.Lock()
	c, ok := ss.signouts[name]
	ss.mu.Unlock()
	if ok && now.Sub(c.read) < signoutCacheTTL && !now.Before(c.read) {
		return c.at, nil
	}
	v, err := ss.settings.SettingOrInit(ctx, name, []byte{})
	if err != nil {
		return 0, err
	}
	var at int64
	if len(v) == 8 {
		at = int64(binary.BigEndian.Uint64(v))
	}
	ss.mu.Lock()
	ss.signouts[name] = signout{at: at, read: now}
	ss.mu.Unlock()
	return at, nil
}

func signoutSetting(apiKey string) string {
	h := sha256.Sum256([]byte(apiKey))
	return settingSignoutPrefix + hex.EncodeToString(h[:])
}

// memSettings keeps settings in this process: the Server's settings when Config.Settings
// is nil (tests, embedding), with which a restart signs everyone out.
type memSettings struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (ms *memSettings) SettingOrInit(_ context.Context, name string, init []byte) ([]byte, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if v, ok := ms.m[name]; ok {
		return v, nil
	}
	if ms.m == nil {
		ms.m = make(map[string][]byte)
	}
	ms.m[name] = init
	return init, nil
}

func (ms *memSettings) SetSetting(_ context.Context, name string, value []byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.m == nil {
		ms.m = make(map[string][]byte)
	}
	ms.m[name] = value
	return nil
}

// validCSRF reports whether a form's token is the sign-in's, in constant time.
func (si *signin) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(si.csrf)) == 1
}

// sameOrigin reports whether a state-changing request comes from a page of this server:
// its Origin (or, without one, its Referer) names the request's host. Requests with
// neither (not from a browser) pass; the CSRF token still guards them.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

// setCookie sets (or, with maxAge -1, deletes) the sign-in cookie. It is set only by
// /ui/login and /ui/logout and has no Path attribute, so that browsers scope it to the
// path those are at, /ui (behind a reverse proxy's prefix too): it is not sent with the
// live view's and DevTools' requests (/debug/…), which share the dashboard's origin.
func setCookie(w http.ResponseWriter, value string, maxAge int, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    value,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
}
