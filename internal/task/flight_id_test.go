package task

import (
	"slices"
	"strings"
	"testing"
)

// TestActionIDKeys: the IDs newID gives are keyed by their bytes and come
// back the same; any other string is kept as it is, and the set holds and
// drops both kinds alike.
func TestActionIDKeys(t *testing.T) {
	for range 100 {
		id := newID("act")
		k, ok := parseID("act", id)
		if !ok || formatID("act", k) != id {
			t.Fatalf("%s: parsed %v, formatted %s", id, ok, formatID("act", k))
		}
	}
	good := newID("act")
	for _, id := range []string{"", "act_", "act_neverauthorized", strings.ToUpper(good), "dec" + good[3:],
		good[:len(good)-1] + "b", // the last character's two spare bits set
		good + "a", good[:len(good)-1] + "1", "act-" + good[4:]} {
		if _, ok := parseID("act", id); ok {
			t.Errorf("parseID(%q) = ok", id)
		}
	}
	var s actionSet
	kind := &actionKind{taskID: "tsk_1"}
	ids := []string{good, "act_neverauthorized", newID("act")}
	for i, id := range ids {
		s.put(id, flight{kind: kind, index: uint64(i)})
	}
	var seen []string
	s.each(func(id string, _ flight) { seen = append(seen, id) })
	if s.len() != 3 || !slices.Equal(slices.Sorted(slices.Values(seen)), slices.Sorted(slices.Values(ids))) || seen[len(seen)-1] != ids[1] {
		t.Fatalf("set of %d: %v, the foreign ID last", s.len(), seen)
	}
	for i, id := range ids {
		if f, ok := s.get(id); !ok || f.index != uint64(i) {
			t.Errorf("get(%s) = %+v, %v", id, f, ok)
		}
	}
	s.del(ids[1])
	if _, ok := s.get(ids[1]); ok || s.len() != 2 {
		t.Errorf("after del, %d left", s.len())
	}
	if n := s.dropTasks(map[string]bool{"tsk_1": true}); n != 2 || s.len() != 0 {
		t.Errorf("dropTasks dropped %d, %d left", n, s.len())
	}
}

// FuzzParseID: whatever parseID accepts, formatID writes back as it was.
func FuzzParseID(f *testing.F) {
	f.Add(newID("act"))
	f.Add("act_aaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("act_77777777777777777777777777")
	f.Fuzz(func(t *testing.T, id string) {
		if k, ok := parseID("act", id); ok && formatID("act", k) != id {
			t.Fatalf("%q parses to %x, which formats as %q", id, k, formatID("act", k))
		}
	})
}
