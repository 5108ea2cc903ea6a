package credential

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of their compact form
// until they expire, so a token presented again costs a hash and a map
// lookup instead of a signature check. Entries are immutable *Token values;
// Verify hands out copies. Only verified tokens are cached: a refusal is
// always recomputed.
//
// The cache holds at most size entries. When full it first sweeps every
// expired entry; if that frees less than an eighth of the space it also
// drops arbitrary live entries (they are re-verified on next use) until an
// eighth is free. Each sweep so makes room for size/8 inserts, keeping the
// cost per insert constant.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]*Token
	size    int
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{entries: make(map[[32]byte]*Token, min(size, 4096)), size: size}
}

func (c *tokenCache) get(key [32]byte) (*Token, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	t, ok := c.entries[key]
	c.mu.RUnlock()
	return t, ok
}

func (c *tokenCache) put(key [32]byte, t *Token, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		c.makeRoom(now)
	}
	c.entries[key] = t
}

// makeRoom removes expired entries, then arbitrary ones, until at least an
// eighth of the cache is free. Map iteration order is random.
func (c *tokenCache) makeRoom(now time.Time) {
	target := c.size - max(c.size/8, 1)
	for k, t := range c.entries {
		if !now.Before(t.Expiry.Add(ClockSkew)) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}

func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
