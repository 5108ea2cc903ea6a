package task

import (
	"bytes"
	"hash/maphash"
	"math/bits"
	"slices"
)

// idTable is the table of the actions in flight keyed by their 16 bytes
// (flight.go), made for a million of them in one task. A Go map of the
// same takes 60–83 bytes an action (its slots of 32 bytes, its groups'
// control words, and room doubled at each growth); this one takes 28 a
// slot, in three flat arrays (the keys, the ledger indexes, the kinds as
// numbers), and grows by half rather than doubling: 35–53 bytes an action
// between two growths. It is open addressing with linear probing; a
// removal shifts back the slots after it that probed past it, so it
// leaves no tombstones and lookups stay as short as the load makes them.
// The hash is seeded per table, so IDs chosen to collide (a foreign
// writer's) do not make probes long.
type idTable struct {
	keys  [][16]byte
	index []uint64
	// kind is the slot's kind number plus one; 0 marks an empty slot.
	kind []uint32
	n    int
	seed maphash.Seed
}

const (
	// idTableMin is the fewest slots a table that holds anything has.
	idTableMin = 16
	// A table grows when it would be more than idTableLoad full, by
	// half, and shrinks to half full when it falls under a quarter.
	idTableLoadNum, idTableLoadDen = 4, 5
)

func (t *idTable) len() int { return t.n }

// home is the slot k probes from: k's hash scaled to the table, which
// need not be a power of two.
func (t *idTable) home(k *[16]byte) int {
	hi, _ := bits.Mul64(maphash.Bytes(t.seed, k[:]), uint64(len(t.keys)))
	return int(hi)
}

// find returns the slot holding k, or the empty slot where it would go
// and false.
func (t *idTable) find(k *[16]byte) (int, bool) {
	i := t.home(k)
	for t.kind[i] != 0 {
		if t.keys[i] == *k {
			return i, true
		}
		if i++; i == len(t.keys) {
			i = 0
		}
	}
	return i, false
}

// get returns k's ledger index and kind number.
func (t *idTable) get(k [16]byte) (index uint64, kind uint32, ok bool) {
	if t.n == 0 {
		return 0, 0, false
	}
	i, ok := t.find(&k)
	if !ok {
		return 0, 0, false
	}
	return t.index[i], t.kind[i] - 1, true
}

// put sets k's ledger index and kind number, adding k when it is not in.
// kind must be less than math.MaxUint32.
func (t *idTable) put(k [16]byte, index uint64, kind uint32) {
	if len(t.keys) == 0 || (t.n+1)*idTableLoadDen > len(t.keys)*idTableLoadNum {
		t.resize(max(idTableMin, len(t.keys)+len(t.keys)/2))
	}
	i, ok := t.find(&k)
	if !ok {
		t.keys[i] = k
		t.n++
	}
	t.index[i], t.kind[i] = index, kind+1
}

// del removes k, and reports whether it was in.
func (t *idTable) del(k [16]byte) bool {
	if t.n == 0 {
		return false
	}
	i, ok := t.find(&k)
	if !ok {
		return false
	}
	t.remove(i)
	t.shrink()
	return true
}

// remove empties slot i and shifts back into it, and into each slot so
// emptied, the next slot of its run whose home is not between the hole
// and it: every key stays reachable from its home without a gap.
func (t *idTable) remove(i int) {
	t.n--
	j := i
	for {
		t.kind[i] = 0
		for {
			if j++; j == len(t.keys) {
				j = 0
			}
			if t.kind[j] == 0 {
				return
			}
			h := t.home(&t.keys[j])
			// j stays when its home is cyclically in (i, j].
			if i <= j && (i < h && h <= j) || i > j && (i < h || h <= j) {
				continue
			}
			break
		}
		t.keys[i], t.index[i], t.kind[i] = t.keys[j], t.index[j], t.kind[j]
		i = j
	}
}

// shrink halves the table's room when under a quarter of it is used, so
// that a task forgotten with a million actions gives their room back. It
// keeps idTableMin slots when empty: a task whose results come promptly
// goes from none to one in flight and back at every call.
func (t *idTable) shrink() {
	if len(t.keys) > idTableMin && t.n*4 < len(t.keys) {
		t.resize(max(idTableMin, t.n*2))
	}
}

// resize moves the table to n slots.
func (t *idTable) resize(n int) {
	old := *t
	if old.keys == nil {
		t.seed = maphash.MakeSeed()
	}
	t.keys, t.index, t.kind = make([][16]byte, n), make([]uint64, n), make([]uint32, n)
	for i, kd := range old.kind {
		if kd == 0 {
			continue
		}
		j, _ := t.find(&old.keys[i])
		t.keys[j], t.index[j], t.kind[j] = old.keys[i], old.index[i], kd
	}
}

// deleteFunc removes the keys whose kind number drop reports, and returns
// how many.
func (t *idTable) deleteFunc(drop func(kind uint32) bool) int {
	n := t.n
	for i := 0; i < len(t.kind); {
		// A removal may shift a slot not yet seen into i: look again.
		// One from the run's wrapped start may come back to the end,
		// and be seen twice, which keeps it.
		if t.kind[i] != 0 && drop(t.kind[i]-1) {
			t.remove(i)
			continue
		}
		i++
	}
	n -= t.n
	t.shrink()
	return n
}

// each calls fn for every key in the bytes' order. Its only memory is the
// order: four bytes a key.
func (t *idTable) each(fn func(k [16]byte, index uint64, kind uint32)) {
	order := make([]uint32, 0, t.n)
	for i, kd := range t.kind {
		if kd != 0 {
			order = append(order, uint32(i))
		}
	}
	slices.SortFunc(order, func(a, b uint32) int { return bytes.Compare(t.keys[a][:], t.keys[b][:]) })
	for _, i := range order {
		fn(t.keys[i], t.index[i], t.kind[i]-1)
	}
}
