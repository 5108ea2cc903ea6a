package abuse

import (
	"math"
	"sync"
	"time"

	"github.com/writhq/writ/internal/config"
)

// overflowKey names the one bucket that keys share once a class tracks
// as many as it may.
const overflowKey = "*"

// buckets is one class of token buckets, one per key (a client address
// or a principal), in bounded memory: a bucket that has refilled is
// forgotten, since a new one would be in the same state; and past max
// keys, new keys share one overflow bucket, so a flood of distinct
// addresses costs that one bucket instead of memory.
type buckets struct {
	rate  float64 // tokens a second
	burst float64
	max   int

	mu        sync.RWMutex
	m         map[string]*bucket
	overflow  bucket
	lastSweep time.Time
}

// bucket is a token count as of a time.
type bucket struct {
	tokens float64
	at     time.Time
}

func newBuckets(r config.Rate, max int) *buckets {
	if r.Off() {
		return nil
	}
	return &buckets{rate: r.PerSecond, burst: float64(r.Burst), max: max, m: map[string]*bucket{},
		overflow: bucket{tokens: float64(r.Burst)}}
}

// level is b's token count at now.
func (bs *buckets) level(b *bucket, now time.Time) float64 {
	if b.at.IsZero() {
		return b.tokens
	}
	d := now.Sub(b.at).Seconds()
	if d <= 0 {
		return b.tokens
	}
	return math.Min(bs.burst, b.tokens+d*bs.rate)
}

// wait is how long until a bucket at level holds one token.
func (bs *buckets) wait(level float64) time.Duration {
	return time.Duration((1 - level) / bs.rate * float64(time.Second))
}

// take takes a token from key's bucket: ok, or how long until one is
// there. A nil class (off) always allows.
func (bs *buckets) take(key string, now time.Time) (bool, time.Duration) {
	if bs == nil {
		return true, 0
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[key]
	if b == nil {
		if len(bs.m) >= bs.max || now.Sub(bs.lastSweep) >= time.Minute {
			bs.sweep(now)
		}
		if len(bs.m) >= bs.max {
			b = &bs.overflow
		} else {
			b = &bucket{tokens: bs.burst}
			bs.m[key] = b
		}
	}
	l := bs.level(b, now)
	if !now.Before(b.at) {
		b.at = now
	}
	if l < 1 {
		b.tokens = l
		return false, bs.wait(l)
	}
	b.tokens = l - 1
	return true, 0
}

// empty reports whether key's bucket holds less than one token now, and
// how long until it will, without taking one. A key never charged is
// full.
func (bs *buckets) empty(key string, now time.Time) (bool, time.Duration) {
	if bs == nil {
		return false, 0
	}
	bs.mu.RLock()
	defer bs.mu.RUnlock()
	b := bs.m[key]
	if b == nil {
		if len(bs.m) < bs.max {
			return false, 0
		}
		b = &bs.overflow
	}
	l := bs.level(b, now)
	if l < 1 {
		return true, bs.wait(l)
	}
	return false, 0
}

// sweep forgets every bucket that has refilled. It runs when a new key
// arrives and the class is full or was last swept a minute ago, at most
// once a second, so a flood does not make every request a walk over the
// map. The caller holds mu.
func (bs *buckets) sweep(now time.Time) {
	if now.Sub(bs.lastSweep) < time.Second {
		return
	}
	bs.lastSweep = now
	for k, b := range bs.m {
		if bs.level(b, now) >= bs.burst {
			delete(bs.m, k)
		}
	}
}

// size is how many keys the class tracks (tests).
func (bs *buckets) size() int {
	if bs == nil {
		return 0
	}
	bs.mu.RLock()
	defer bs.mu.RUnlock()
	return len(bs.m)
}
