package task

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKeyedIsAMap: put and get on a keyed answer as on a map, below and
// past keyedSmall keys, and sorted gives its keys in order.
func TestKeyedIsAMap(t *testing.T) {
	for _, n := range []int{1, keyedSmall, keyedSmall + 1, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			var k keyed[int]
			m := map[string]int{}
			for range 4 * n {
				key := fmt.Sprintf("k%d", rng.IntN(n))
				if rng.IntN(3) == 0 {
					got := k.get(key)
					want, ok := m[key]
					if (got != nil) != ok || got != nil && *got != want || k.has(key) != ok {
						t.Fatalf("get(%q) = %v, want %d, %v", key, got, want, ok)
					}
					continue
				}
				*k.put(key)++
				m[key]++
				if k.len() != len(m) {
					t.Fatalf("len %d, want %d", k.len(), len(m))
				}
			}
			var keys []string
			for _, e := range k.sorted() {
				keys = append(keys, e.key)
				if e.v != m[e.key] {
					t.Errorf("%s: %d, want %d", e.key, e.v, m[e.key])
				}
			}
			if want := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, want) {
				t.Errorf("sorted keys %q, want %q", keys, want)
			}
			if k.get("absent") != nil || k.has("absent") {
				t.Error("an absent key is present")
			}
		})
	}
}

// TestKeyedDecoded: entries a decoder wrote are taken in strictly
// increasing order only.
func TestKeyedDecoded(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		ok   bool
	}{
		{nil, true},
		{[]string{"a"}, true},
		{[]string{"a", "b", "c"}, true},
		{[]string{"a", "a"}, false},
		{[]string{"b", "a"}, false},
	} {
		var k keyed[struct{}]
		for _, s := range tc.keys {
			k.s = append(k.s, keyedEntry[struct{}]{key: s})
		}
		if got := k.decoded(); got != tc.ok {
			t.Errorf("%q: decoded %v, want %v", tc.keys, got, tc.ok)
		}
	}
	var k keyed[struct{}]
	for i := range 2 * keyedSmall {
		k.s = append(k.s, keyedEntry[struct{}]{key: fmt.Sprintf("k%03d", i)})
	}
	if !k.decoded() || !k.has("k050") || k.has("k999") {
		t.Error("a large decoded keyed does not find its keys")
	}
	k.put("k999")
	if !k.has("k999") || k.len() != 2*keyedSmall+1 {
		t.Error("a large decoded keyed does not take a new key")
	}
}

// BenchmarkKeyedPut: a task's history reaching 10,000 distinct keys, one
// new key a call, costs about the same per call as a map (no shifting
// of a long sorted slice).
func BenchmarkKeyedPut(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("erp://invoices/2026-Q3/%d", (i*7919)%len(keys))
	}
	b.Run("keyed", func(b *testing.B) {
		for b.Loop() {
			var k keyed[struct{}]
			for _, s := range keys {
				k.put(s)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := map[string]struct{}{}
			for _, s := range keys {
				m[s] = struct{}{}
			}
		}
	})
}
