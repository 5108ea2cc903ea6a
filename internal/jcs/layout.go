package jcs

import (
	"cmp"
	"slices"
)

// layout appends the document in p.out to dst, with the members of every
// object in p.reorders in canonical order. Each byte is copied once.
func (p *parser) layout(dst []byte) []byte {
	if len(p.reorders) == 0 {
		return append(dst, p.out...)
	}
	// Reorders are recorded as objects close, innermost first; emit looks
	// them up by position.
	slices.SortFunc(p.reorders, func(a, b reorder) int { return cmp.Compare(a.start, b.start) })
	return p.emit(dst, 0, len(p.out))
}

// emit appends out[from:to] to dst, laying out the reordered objects inside
// it. Reordered objects nest properly, so those inside [from, to) form a run
// of p.reorders, and the ones inside an object come right after it.
func (p *parser) emit(dst []byte, from, to int) []byte {
	i := p.nextReorder(from)
	for i < len(p.reorders) && p.reorders[i].start < to {
		r := p.reorders[i]
		dst = append(dst, p.out[from:r.start]...)
		for k, s := range p.spans[r.first:r.last] {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = p.emit(dst, s.start, s.end)
		}
		from = r.end
		i = p.nextReorder(r.end) // skip the objects nested in r
	}
	return append(dst, p.out[from:to]...)
}

// nextReorder returns the index of the first reordered object whose body
// starts after pos. Strictly after: an object's first member starts where its
// body does, and emitting that member must not find the object again.
func (p *parser) nextReorder(pos int) int {
	i, found := slices.BinarySearchFunc(p.reorders, pos, func(r reorder, pos int) int {
		return cmp.Compare(r.start, pos)
	})
	if found {
		i++
	}
	return i
}
