package policy

import "sync/atomic"

// slotCache keeps an engine's form of values that repeat from decision to
// decision (derived facts, a task's member, a history's few numbers, a
// Cedar action), by the key it was built from. It is bounded (64 slots, a
// key's slot taken by its hash and replaced freely on a collision) and
// lock-free, and its values are never modified once built, so concurrent
// evaluations share them safely. A value is used only for a key equal to
// the one it was built from. The zero value is ready; a nil cache holds
// and stores nothing.
type slotCache[K slotKey[K], V any] [64]atomic.Pointer[slotEntry[K, V]]

// slotKey is what a slotCache needs of its key type K: a hash, equality,
// and the copy an entry keeps (deep enough that nothing the caller changes
// later reaches it). The methods take their keys by value: a key handed by
// pointer to a method of a type parameter would escape to the heap.
type slotKey[K any] interface {
	slotHash() uint64
	sameAs(K) bool
	kept() K
}

type slotEntry[K, V any] struct {
	k K
	v V
}

func (c *slotCache[K, V]) slot(k *K) *atomic.Pointer[slotEntry[K, V]] {
	return &c[(*k).slotHash()%uint64(len(c))]
}

// lookup returns the value stored for a key equal to k, if any.
func (c *slotCache[K, V]) lookup(k *K) (V, bool) {
	if c != nil {
		if e := c.slot(k).Load(); e != nil && (*k).sameAs(e.k) {
			return e.v, true
		}
	}
	var zero V
	return zero, false
}

// store remembers v for a copy of k, replacing whatever shared its slot.
func (c *slotCache[K, V]) store(k *K, v V) {
	if c != nil {
		c.slot(k).Store(&slotEntry[K, V]{k: (*k).kept(), v: v})
	}
}

// get returns the value stored for k, or builds and stores it.
func (c *slotCache[K, V]) get(k *K, build func() V) V {
	if v, ok := c.lookup(k); ok {
		return v
	}
	v := build()
	c.store(k, v)
	return v
}

// fnv64 folds v into the FNV-1a hash h.
func fnv64(h, v uint64) uint64 { return (h ^ v) * 1099511628211 }

// fnvOffset is FNV-1a's starting hash.
const fnvOffset = 14695981039346656037
