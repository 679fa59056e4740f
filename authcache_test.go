package browserd

import (
	"testing"
	"time"
)

func TestAuthCache(t *testing.T) {
	var c authCache
	now := time.Unix(1000, 0)
	h := HashAPIKey("k1")
	if _, ok := c.get(h, now); ok {
		t.Fatal("empty cache hit")
	}
	c.put(h, &APIKey{ID: "a", ProjectID: "p"}, now)
	k, ok := c.get(h, now.Add(authCacheTTL-time.Millisecond))
	if !ok || k.ID != "a" || k.ProjectID != "p" {
		t.Fatalf("get = %+v, %v", k, ok)
	}
	k.ProjectID = "changed"
	if k2, _ := c.get(h, now); k2.ProjectID != "p" {
		t.Fatalf("a caller's change reached the cache: %q", k2.ProjectID)
	}
	if _, ok := c.get(h, now.Add(authCacheTTL)); ok {
		t.Fatal("hit after the TTL")
	}
	if _, ok := c.get(HashAPIKey("k2"), now); ok {
		t.Fatal("hit for another key")
	}
	for i := range authCacheMax + 1 {
		c.put(HashAPIKey(string(rune(i))+"x"), &APIKey{}, now)
	}
	if len(c.m) > authCacheMax {
		t.Fatalf("cache grew to %d", len(c.m))
	}
}
