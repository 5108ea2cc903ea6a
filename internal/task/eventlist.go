package task

import "encoding/binary"

// eventList is a task's ledger indexes in the order applied, packed: each
// the signed difference from the one before, as a varint. A task's events
// are close together in the log, so most take a byte or two instead of
// eight, which is what a task that makes a million calls keeps of them.
type eventList struct {
	b    []byte
	last uint64
	n    int
}

// add appends index i.
func (l *eventList) add(i uint64) {
	l.b = binary.AppendVarint(l.b, int64(i-l.last))
	l.last = i
	l.n++
}

// len returns how many indexes l holds.
func (l *eventList) len() int {
	if l == nil {
		return 0
	}
	return l.n
}

// all returns the indexes, in the order added.
func (l *eventList) all() []uint64 {
	if l == nil {
		return nil
	}
	out := make([]uint64, 0, l.n)
	l.each(func(i uint64) { out = append(out, i) })
	return out
}

// each calls fn with every index, in the order added.
func (l *eventList) each(fn func(i uint64)) {
	if l == nil {
		return
	}
	var at uint64
	for b := l.b; len(b) > 0; {
		d, k := binary.Varint(b)
		if k <= 0 {
			break // never: add wrote it
		}
		at += uint64(d)
		fn(at)
		b = b[k:]
	}
}

// ascending reports whether the indexes were added in increasing order.
func (l *eventList) ascending() bool {
	ok := true
	var last uint64
	l.each(func(i uint64) {
		ok = ok && i >= last
		last = i
	})
	return ok
}
