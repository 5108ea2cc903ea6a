package task

import (
	"slices"
	"testing"
)

// TestEventListRoundTrip: the packed list gives back what was added, in
// order, gaps and steps back (events applied out of index order) included.
func TestEventListRoundTrip(t *testing.T) {
	want := []uint64{0, 1, 2, 9, 8, 1 << 40, 1<<53 - 1, 3, 3}
	var l eventList
	for _, i := range want {
		l.add(i)
	}
	if got := l.all(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := (&eventList{}).all(); len(got) != 0 {
		t.Fatalf("empty list gives %v", got)
	}
}
