package liveview

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// cookieName names the dashboard's sign-in cookie. It holds a random id; the API key
// stays on the server.
const cookieName = "browserd_signin"

// signin is one dashboard sign-in. The API key is kept (in memory only) so that every
// request authenticates again: a revoked key signs the dashboard out.
type signin struct {
	apiKey  string
	csrf    string // the token every form of this sign-in posts back
	expires time.Time
}

// Bounds of the sign-ins kept (security review F13): each costs memory until it expires,
// and anyone with a key can sign in as often as they like.
const (
	maxSigninsPerKey = 32
	maxSignins       = 4096
)

// signins are the dashboard's sign-ins, by the SHA-256 of their cookie. They live in
// this process: a restart signs everyone out (docs/COMPATIBILITY.md). At most
// perKey are kept per API key and max in all; beyond them the oldest is signed out.
type signins struct {
	ttl         time.Duration
	perKey, max int
	mu          sync.Mutex
	m           map[string]*signin
}

func newSignins(ttl time.Duration) *signins {
	return &signins{ttl: ttl, perKey: maxSigninsPerKey, max: maxSignins, m: make(map[string]*signin)}
}

func cookieKey(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// create records a sign-in and returns its cookie value. It drops the expired sign-ins,
// then the oldest of the key's when it has perKey, then the oldest of all when there
// are max: one pass over at most max entries.
func (ss *signins) create(apiKey string, now time.Time) (cookie string, si *signin) {
	cookie = rand.Text() + rand.Text()
	si = &signin{apiKey: apiKey, csrf: rand.Text(), expires: now.Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest, oldestOfKey string
	ofKey := 0
	for k, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, k)
			continue
		}
		if oldest == "" || s.expires.Before(ss.m[oldest].expires) {
			oldest = k
		}
		if s.apiKey == apiKey {
			ofKey++
			if oldestOfKey == "" || s.expires.Before(ss.m[oldestOfKey].expires) {
				oldestOfKey = k
			}
		}
	}
	if ofKey >= ss.perKey {
		delete(ss.m, oldestOfKey)
	} else if len(ss.m) >= ss.max {
		delete(ss.m, oldest)
	}
	ss.m[cookieKey(cookie)] = si
	return cookie, si
}

// get returns the live sign-in of a cookie, or nil.
func (ss *signins) get(cookie string, now time.Time) *signin {
	if cookie == "" {
		return nil
	}
	k := cookieKey(cookie)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	si := ss.m[k]
	if si != nil && !now.Before(si.expires) {
		delete(ss.m, k)
		return nil
	}
	return si
}

func (ss *signins) remove(cookie string) {
	ss.mu.Lock()
	delete(ss.m, cookieKey(cookie))
	ss.mu.Unlock()
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
