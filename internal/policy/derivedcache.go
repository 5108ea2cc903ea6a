package policy

import "sync/atomic"

// derivedCache keeps an engine's form of recently seen derived facts (the
// Rego AST object, the Cedar record) for one compiled bundle. Derived is a
// small comparable struct whose values repeat from request to request, and
// its form is the largest part of a pruned input document: building it once
// per distinct value rather than once per decision saves a good share of a
// decision's allocations. It is bounded (64 slots, replaced freely on a
// collision) and lock-free; the values are never modified once built, so
// concurrent evaluations share them safely.
type derivedCache[T any] [64]atomic.Pointer[derivedEntry[T]]

type derivedEntry[T any] struct {
	d Derived
	v T
}

func (c *derivedCache[T]) slot(d *Derived) *atomic.Pointer[derivedEntry[T]] {
	var h uint64
	for i, b := range [...]bool{d.ToolInScope, d.ResourceInScope, d.OperationInScope, d.EnvironmentInScope,
		d.DataClassKnown, d.Delegated, d.NarrowsParent, d.TTLValid} {
		if b {
			h |= 1 << i
		}
	}
	h |= uint64(d.DataClassLevel+1)&7<<8 | uint64(d.CeilingLevel+1)&7<<11
	h ^= uint64(d.TTLSeconds) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	return &c[h%uint64(len(c))]
}

// lookup returns the value stored for exactly d, if any. A nil cache holds
// nothing.
func (c *derivedCache[T]) lookup(d *Derived) (T, bool) {
	if c == nil {
		var zero T
		return zero, false
	}
	if e := c.slot(d).Load(); e != nil && e.d == *d {
		return e.v, true
	}
	var zero T
	return zero, false
}

// store remembers v for d, replacing whatever shared its slot. A nil cache
// stores nothing.
func (c *derivedCache[T]) store(d *Derived, v T) {
	if c == nil {
		return
	}
	c.slot(d).Store(&derivedEntry[T]{d: *d, v: v})
}
