package credential

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/writhq/writ/internal/refusal"
)

// DefaultReplayEntries is the ReplayCache capacity when NewReplayCache is
// given zero: room for that many proofs within one DPoPWindow.
const DefaultReplayEntries = 200_000

// ReplayCache remembers the jti of every accepted DPoP proof until the proof
// could no longer pass the iat window, so each proof is accepted once
// (RFC 9449 §11.1). Entries are keyed by a hash of the proof key's thumbprint
// and the jti, so memory per entry is fixed whatever the client sends.
//
// It is bounded. When full, expired entries are swept (at most once a
// second); if the cache is still full the proof is refused: forgetting a live
// entry would allow a replay, so overload fails closed. The cache is per
// process and lost with it: a proof replayed after a restart, or to another
// replica, within DPoPWindow is caught by a durable record of accepted
// proofs that the store keeps (Share; both the SQLite and the PostgreSQL
// store keep one, the latter shared by every replica).
type ReplayCache struct {
	mu        sync.Mutex
	seen      map[[32]byte]int64 // key -> forget after (unix nanoseconds)
	max       int
	lastSweep time.Time
	shared    SharedReplay
}

// SharedReplay records accepted DPoP proofs durably, for every replica and
// across restarts: it records key until until and reports whether it was
// new (false: a proof another replica, or this one, accepted before). It
// answers only once the record is durable.
type SharedReplay func(ctx context.Context, key []byte, until time.Time) (bool, error)

// SharedReplayTimeout bounds one Claim; a record that does not answer in
// time refuses the proof.
const SharedReplayTimeout = 2 * time.Second

// Share makes the cache consult shared after its own entries, so that a
// proof accepted before a restart, or by another replica, is refused. Call
// it before the cache is used. A shared record that fails refuses the
// proof: a replay it could not rule out is not accepted.
func (c *ReplayCache) Share(shared SharedReplay) { c.shared = shared }

// NewReplayCache returns a cache holding up to maxEntries live proofs;
// zero or less means DefaultReplayEntries.
func NewReplayCache(maxEntries int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	return &ReplayCache{seen: make(map[[32]byte]int64, min(maxEntries, 4096)), max: maxEntries}
}

// record notes (jkt, jti) until until, refusing it if already present,
// here or in the shared record.
func (c *ReplayCache) record(jkt, jti string, until, now time.Time) *refusal.Error {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var key [32]byte
	h.Sum(key[:0])

	if e := c.recordLocal(key, until, now); e != nil {
		return e
	}
	if c.shared == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), SharedReplayTimeout)
	defer cancel()
	fresh, err := c.shared(ctx, key[:], until)
	switch {
	case err != nil:
		return dpopError("DPoP proof could not be checked against the durable record of used proofs")
	case !fresh:
		return dpopError("DPoP proof jti has been used before")
	}
	return nil
}

func (c *ReplayCache) recordLocal(key [32]byte, until, now time.Time) *refusal.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[key]; ok && now.UnixNano() <= exp {
		return dpopError("DPoP proof jti has been used before")
	}
	if len(c.seen) >= c.max {
		if now.Sub(c.lastSweep) >= time.Second || now.Before(c.lastSweep) {
			c.lastSweep = now
			n := now.UnixNano()
			for k, exp := range c.seen {
				if n > exp {
					delete(c.seen, k)
				}
			}
		}
		if len(c.seen) >= c.max {
			return dpopError("too many recent DPoP proofs; retry shortly")
		}
	}
	c.seen[key] = until.UnixNano()
	return nil
}

// Len is the number of proofs currently remembered, for metrics.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
