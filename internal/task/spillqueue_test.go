package task

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSpillQueueOrders: entries pushed out of order by a few come out in
// index order, each once, and popThrough stops at its bound.
func TestSpillQueueOrders(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q spillQueue
	var want, got []uint64
	next := uint64(1)
	for round := range 200 {
		// A run of indexes, pushed with a few neighbours swapped.
		run := make([]uint64, 1+r.IntN(40))
		for i := range run {
			run[i] = next
			next++
		}
		for range len(run) / 4 {
			if i := r.IntN(len(run)); i+1 < len(run) {
				run[i], run[i+1] = run[i+1], run[i]
			}
		}
		for _, i := range run {
			var k [16]byte
			k[0] = byte(i)
			q.push(i, k)
		}
		want = append(want, run...)
		through := next - 1 - uint64(r.IntN(10))
		if round == 199 {
			through = next
		}
		q.popThrough(through, func(e spillEntry) {
			if e.index > through || e.key[0] != byte(e.index) {
				t.Fatalf("popped %+v through %d", e, through)
			}
			got = append(got, e.index)
		})
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("popped %d entries out of order or not once each (%d pushed)", len(got), len(want))
	}
}
