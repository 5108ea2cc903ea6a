package identity

import (
	"sync"
	"time"
)

// cache remembers verified principals by the SHA-256 of the token (or client
// certificate chain) until the credential expires or maxAge passes, whichever
// is first. It holds at most size entries; when full it drops expired entries
// and, if none, an arbitrary one. Only successes are cached: a refusal is
// always re-checked.
type cache struct {
	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
	size    int
	maxAge  time.Duration
}

type cacheEntry struct {
	p     Principal
	until time.Time
}

func newCache(size int, maxAge time.Duration) *cache {
	if size <= 0 {
		return nil
	}
	return &cache{entries: make(map[[32]byte]cacheEntry, min(size, 1024)), size: size, maxAge: maxAge}
}

// get returns the principal cached under key if it is still valid at now.
func (c *cache) get(key [32]byte, now time.Time) (Principal, bool) {
	if c == nil {
		return Principal{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.until) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return Principal{}, false
	}
	return e.p.clone(), true
}

// put caches p under key until p.Expiry or now+maxAge.
func (c *cache) put(key [32]byte, p Principal, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(c.maxAge)
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		c.evict(now)
	}
	c.entries[key] = cacheEntry{p: p.clone(), until: until}
}

// evict removes expired entries among a bounded sample, and one arbitrary
// entry if that freed nothing. Map iteration order is random, so the sample is.
func (c *cache) evict(now time.Time) {
	const sample = 64
	n, freed := 0, false
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
			freed = true
		}
		if n++; n == sample {
			break
		}
	}
	if freed {
		return
	}
	for k := range c.entries {
		delete(c.entries, k)
		return
	}
}

func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
