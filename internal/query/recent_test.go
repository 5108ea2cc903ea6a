package query

import (
	"testing"

	"github.com/writhq/writ/internal/ledger"
)

func evs(n int) []ledger.Event {
	out := make([]ledger.Event, n)
	for i := range out {
		out[i] = ledger.Event{Type: ledger.TypeActionAuthorized, Bodies: map[string][]byte{"input": []byte("secret")}}
	}
	return out
}

func TestRecent(t *testing.T) {
	var r recent
	if got, held := r.take(0, 10); got != nil || held != ^uint64(0) {
		t.Fatalf("empty: %v, %d", got, held)
	}
	r.add(5, evs(3))
	r.add(8, evs(2)) // contiguous: 5..9
	if got, held := r.take(2, 10); got != nil || held != 5 {
		t.Fatalf("before the held events: %v, next held %d; want nil, 5", got, held)
	}
	got, _ := r.take(6, 3)
	if len(got) != 3 || got[0].Index != 6 || got[2].Index != 8 {
		t.Fatalf("take(6, 3) = %+v", got)
	}
	if got[0].Event.Bodies != nil {
		t.Error("bodies are held; the index never needs them")
	}
	// What was before 6 is forgotten; 6..9 still held (nothing indexed yet).
	if got, held := r.take(5, 10); got != nil || held != 6 {
		t.Fatalf("after take(6): take(5) = %v, %d", got, held)
	}
	if got, _ := r.take(9, 10); len(got) != 1 || got[0].Index != 9 {
		t.Fatalf("take(9) = %+v", got)
	}
	// A gap (another writer's events) starts over.
	r.add(20, evs(2))
	if got, held := r.take(10, 10); got != nil || held != 20 {
		t.Fatalf("after a gap: %v, %d", got, held)
	}
	// Past maxRecent, it starts over from the newest commit.
	r.add(22, evs(maxRecent-2))
	r.add(20+maxRecent, evs(1))
	if got, held := r.take(20, 10); got != nil || held != 20+maxRecent {
		t.Fatalf("after overflow: %v, next held %d; want %d", got, held, 20+maxRecent)
	}
	// Beyond everything held: nothing, and nothing kept.
	if got, held := r.take(30+maxRecent, 10); got != nil || held != ^uint64(0) || len(r.ents) != 0 {
		t.Fatalf("beyond: %v, %d, %d held", got, held, len(r.ents))
	}
}
