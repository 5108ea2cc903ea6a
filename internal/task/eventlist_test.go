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

// TestSharedPaths: equal redact path lists share one copy; different ones,
// even those that would join to the same string, do not.
func TestSharedPaths(t *testing.T) {
	s := NewState()
	a := s.sharedPaths([]string{"output.x", "output.y"})
	b := s.sharedPaths([]string{"output.x", "output.y"})
	if &a[0] != &b[0] {
		t.Error("equal lists are not shared")
	}
	c := s.sharedPaths([]string{"a\x00b"})
	d := s.sharedPaths([]string{"a", "b"})
	if !slices.Equal(c, []string{"a\x00b"}) || !slices.Equal(d, []string{"a", "b"}) {
		t.Errorf("different lists mixed up: %q %q", c, d)
	}
}
