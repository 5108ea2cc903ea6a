package task

import (
	"slices"
	"strings"
)

// keyed is a small map from strings to V, for what a task's history
// counts by tool, by operation and by resource reached: a few keys each
// for nearly every task, and half a million tasks in a large state. A Go
// map of a few entries is two allocations or more, and a decoded snapshot
// was mostly those; keyed is one slice sorted by key, which the snapshot's
// decoder fills in place from a slab (its keys are written sorted). Past
// keyedSmall keys the slice keeps the order the keys came in and a map
// holds their places, so a task of thousands of tools or resources does
// not shift its slice at every new one.
type keyed[V any] struct {
	s []keyedEntry[V]
	// at is each key's place in s once s is longer than keyedSmall; s is
	// sorted while at is nil.
	at map[string]int32
}

type keyedEntry[V any] struct {
	key string
	v   V
}

// keyedSmall is the most keys a keyed holds in sorted order alone: a
// binary search of five comparisons, an insertion moving at most that
// many entries.
const keyedSmall = 32

func (k *keyed[V]) len() int { return len(k.s) }

// get returns key's value, nil when it has none. The pointer is good until
// the next put.
func (k *keyed[V]) get(key string) *V {
	if k.at != nil {
		if i, ok := k.at[key]; ok {
			return &k.s[i].v
		}
		return nil
	}
	if i, ok := k.find(key); ok {
		return &k.s[i].v
	}
	return nil
}

// has reports whether key is in k.
func (k *keyed[V]) has(key string) bool { return k.get(key) != nil }

// put returns key's value, a zero one added when it had none. The pointer
// is good until the next put.
func (k *keyed[V]) put(key string) *V {
	if k.at != nil {
		i, ok := k.at[key]
		if !ok {
			i = int32(len(k.s))
			k.at[key] = i
			k.s = append(k.s, keyedEntry[V]{key: key})
		}
		return &k.s[i].v
	}
	i, ok := k.find(key)
	if !ok {
		k.s = slices.Insert(k.s, i, keyedEntry[V]{key: key})
		if len(k.s) > keyedSmall {
			k.index()
		}
	}
	return &k.s[i].v
}

// find is where key is, or would be, in the sorted k.s.
func (k *keyed[V]) find(key string) (int, bool) {
	return slices.BinarySearchFunc(k.s, key, func(e keyedEntry[V], key string) int { return strings.Compare(e.key, key) })
}

// index makes at, for a k grown past keyedSmall.
func (k *keyed[V]) index() {
	k.at = make(map[string]int32, len(k.s))
	for i, e := range k.s {
		k.at[e.key] = int32(i)
	}
}

// sorted returns k's entries in key order, to read only.
func (k *keyed[V]) sorted() []keyedEntry[V] {
	if k.at == nil {
		return k.s
	}
	s := slices.Clone(k.s)
	slices.SortFunc(s, func(a, b keyedEntry[V]) int { return strings.Compare(a.key, b.key) })
	return s
}

// decoded is for a k whose entries a decoder wrote into k.s: it reports
// whether they are in strictly increasing key order, as sorted gives
// them, and indexes them when they are more than keyedSmall.
func (k *keyed[V]) decoded() bool {
	k.at = nil
	for i := 1; i < len(k.s); i++ {
		if k.s[i].key <= k.s[i-1].key {
			return false
		}
	}
	if len(k.s) > keyedSmall {
		k.index()
	}
	return true
}
