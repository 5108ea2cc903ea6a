package policy

// derivedCache keeps an engine's form of recently seen derived facts (the
// Rego AST object, the Cedar record) for one compiled bundle. Derived is a
// small comparable struct whose values repeat from request to request, and
// its form is the largest part of a pruned input document: building it once
// per distinct value rather than once per decision saves a good share of a
// decision's allocations.
type derivedCache[T any] = slotCache[Derived, T]

func (d Derived) slotHash() uint64 {
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
	return h
}

func (d Derived) sameAs(o Derived) bool { return d == o }

func (d Derived) kept() Derived { return d }
