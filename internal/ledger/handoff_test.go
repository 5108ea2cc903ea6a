package ledger

import (
	"slices"
	"testing"
)

func handed(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{Type: TypeActionAuthorized, Bodies: map[string][]byte{"input": []byte("secret")}}
	}
	return out
}

func indexes(ents []Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.Index)
	}
	return out
}

func TestHandoff(t *testing.T) {
	strip := func(ev Event) Event { ev.Bodies = nil; return ev }
	h := handoff{max: 8}
	if got := h.take(0, 10); got != nil {
		t.Fatalf("empty: %v", got)
	}
	h.add(5, handed(3), nil, nil, strip)
	h.add(10, handed(2), nil, nil, strip) // another writer's 8 and 9 between
	got := h.take(2, 10)
	if want := []uint64{5, 6, 7, 10, 11}; !slices.Equal(indexes(got), want) {
		t.Fatalf("take(2) = %v, want %v", indexes(got), want)
	}
	if got[0].Event.Bodies != nil {
		t.Error("the hand-off kept what keep stripped")
	}
	if got := h.take(6, 2); !slices.Equal(indexes(got), []uint64{6, 7}) {
		t.Fatalf("take(6, 2) = %v", indexes(got))
	}
	// Entries before the follower's position are not held again.
	h.add(3, handed(5), nil, nil, strip) // out of order: starts over, from 6 on
	if got := h.take(6, 10); !slices.Equal(indexes(got), []uint64{6, 7}) {
		t.Fatalf("after an out-of-order add: %v", indexes(got))
	}
	// Past max, the oldest go.
	h.add(12, handed(10), nil, nil, strip)
	if got := h.take(0, 20); !slices.Equal(indexes(got), []uint64{14, 15, 16, 17, 18, 19, 20, 21}) {
		t.Fatalf("after overflow: %v", indexes(got))
	}
	if n, dropped := h.held(); n != 8 || dropped == 0 {
		t.Errorf("held %d, dropped %d", n, dropped)
	}
	// Beyond everything held: nothing, and nothing kept.
	if got := h.take(30, 10); got != nil {
		t.Fatalf("beyond: %v", indexes(got))
	}
	if n, _ := h.held(); n != 0 {
		t.Errorf("%d held after the follower passed them", n)
	}
	h.add(25, handed(3), nil, nil, strip)
	h.add(28, handed(4), nil, nil, strip)
	if got := h.take(30, 10); !slices.Equal(indexes(got), []uint64{30, 31}) {
		t.Errorf("with the follower at 30, held %v of 25..31; want 30 and 31", indexes(got))
	}
}

// TestHandoffLeaves: each held entry keeps its own leaf and leaf hash,
// through the cuts at the follower's position and at max.
func TestHandoffLeaves(t *testing.T) {
	keep := func(ev Event) Event { return ev }
	leavesFrom := func(first, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte{byte(first + i)}
		}
		return out
	}
	hashesOf := func(leaves [][]byte) [][]byte {
		out := make([][]byte, len(leaves))
		for i, l := range leaves {
			out[i] = LeafHash(l)
		}
		return out
	}
	check := func(got []Entry) {
		t.Helper()
		for _, e := range got {
			if len(e.Leaf) != 1 || uint64(e.Leaf[0]) != e.Index {
				t.Fatalf("entry %d holds leaf %v", e.Index, e.Leaf)
			}
			if e.Hash != nil && !slices.Equal(e.Hash, LeafHash(e.Leaf)) {
				t.Fatalf("entry %d holds the hash of another leaf", e.Index)
			}
		}
	}
	h := handoff{max: 4}
	h.add(0, handed(3), leavesFrom(0, 3), hashesOf(leavesFrom(0, 3)), keep)
	check(h.take(2, 10))                                                    // the follower is at 2
	h.add(1, handed(4), leavesFrom(1, 4), hashesOf(leavesFrom(1, 4)), keep) // out of order: starts over, from 2 on
	check(h.take(2, 10))
	h.add(10, handed(9), leavesFrom(10, 9), hashesOf(leavesFrom(10, 9)), keep) // past max: 15 to 18
	got := h.take(0, 10)
	if !slices.Equal(indexes(got), []uint64{15, 16, 17, 18}) {
		t.Fatalf("after overflow: %v", indexes(got))
	}
	check(got)
	for _, e := range got {
		if e.Hash == nil {
			t.Fatalf("entry %d lost its hash", e.Index)
		}
	}
	h.add(19, handed(2), leavesFrom(19, 2), nil, keep)
	if got := h.take(19, 10); len(got) != 2 || got[0].Hash != nil {
		t.Fatalf("handed without hashes: %+v", got)
	}
	h.add(21, handed(2), nil, nil, keep)
	if got := h.take(21, 10); len(got) != 2 || got[0].Leaf != nil {
		t.Fatalf("handed without leaves: %+v", got)
	}
}
