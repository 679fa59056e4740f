package browserd

import (
	"sync"
	"time"
)

// authCacheTTL is how long a verified API key is trusted without reading the store
// again. Looking the key up was an eighth of the CPU of a GET /v1/sessions/{id}; a key
// removed from the store (by another process or node) stops working within this time.
const authCacheTTL = 2 * time.Second

// authCacheMax bounds the cache; when full it starts over.
const authCacheMax = 4096

// authCache remembers the API keys found by hash, for authCacheTTL. Only keys that
// exist are kept: a wrong key always reaches the store.
type authCache struct {
	mu sync.Mutex
	m  map[string]authEntry
}

type authEntry struct {
	key     APIKey
	expires time.Time
}

func (c *authCache) get(hash []byte, now time.Time) (*APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(hash)]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	k := e.key // a copy: callers may change what they get
	return &k, true
}

func (c *authCache) put(hash []byte, k *APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = make(map[string]authEntry)
	}
	c.m[string(hash)] = authEntry{key: *k, expires: now.Add(authCacheTTL)}
}
