package task

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"testing"
)

// tableEntry is what an idTable holds of a key.
type tableEntry struct {
	index uint64
	kind  uint32
}

// checkTable compares t with the reference m in every way it answers:
// its length, a lookup of every key, its order, and the invariant that
// every key is reachable from its home without an empty slot between.
func checkTable(t *testing.T, tb *idTable, m map[[16]byte]tableEntry) {
	t.Helper()
	if tb.len() != len(m) {
		t.Fatalf("table of %d, reference of %d", tb.len(), len(m))
	}
	for k, want := range m {
		index, kind, ok := tb.get(k)
		if !ok || index != want.index || kind != want.kind {
			t.Fatalf("get(%x) = %d, %d, %v; want %+v", k, index, kind, ok, want)
		}
	}
	var keys [][16]byte
	tb.each(func(k [16]byte, index uint64, kind uint32) {
		if want, ok := m[k]; !ok || want != (tableEntry{index, kind}) {
			t.Fatalf("each: %x = %d, %d; reference %+v, %v", k, index, kind, want, ok)
		}
		keys = append(keys, k)
	})
	want := slices.SortedFunc(maps.Keys(m), func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(keys, want) {
		t.Fatalf("each gave %d keys out of order or not the reference's %d", len(keys), len(want))
	}
	used := 0
	for i, kd := range tb.kind {
		if kd == 0 {
			continue
		}
		used++
		for j := tb.home(&tb.keys[i]); j != i; j = (j + 1) % len(tb.keys) {
			if tb.kind[j] == 0 {
				t.Fatalf("slot %d: an empty slot %d between its key's home and it", i, j)
			}
		}
	}
	if used != len(m) {
		t.Fatalf("%d slots used, %d keys", used, len(m))
	}
	if len(tb.keys) > 0 && (tb.n*idTableLoadDen > len(tb.keys)*idTableLoadNum || len(tb.keys) > idTableMin && tb.n*4 < len(tb.keys)) {
		t.Fatalf("%d keys in %d slots", tb.n, len(tb.keys))
	}
}

// key returns a key that differs from key(j) for j != i.
func key(i uint64) (k [16]byte) {
	binary.BigEndian.PutUint64(k[:8], i*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(k[8:], i)
	return k
}

// TestIDTable: keys put, looked up, replaced and removed, through growths
// by half and shrinks, answer as a map of the same does, and come out in
// the bytes' order.
func TestIDTable(t *testing.T) {
	var tb idTable
	m := map[[16]byte]tableEntry{}
	if _, _, ok := tb.get(key(1)); ok || tb.del(key(1)) || tb.deleteFunc(func(uint32) bool { return true }) != 0 {
		t.Fatal("an empty table holds something")
	}
	checkTable(t, &tb, m)
	var sizes []int
	for i := range uint64(5000) {
		tb.put(key(i), i*3, uint32(i%7))
		m[key(i)] = tableEntry{i * 3, uint32(i % 7)}
		if len(sizes) == 0 || sizes[len(sizes)-1] != len(tb.keys) {
			sizes = append(sizes, len(tb.keys))
		}
		if i%997 == 0 {
			checkTable(t, &tb, m)
		}
	}
	checkTable(t, &tb, m)
	for i := 1; i < len(sizes); i++ {
		if sizes[i] != sizes[i-1]+sizes[i-1]/2 {
			t.Errorf("grew from %d slots to %d, not by half", sizes[i-1], sizes[i])
		}
	}
	// Replaced in place.
	tb.put(key(10), 1<<60, 1<<31)
	m[key(10)] = tableEntry{1 << 60, 1 << 31}
	checkTable(t, &tb, m)
	// Removed, then put again into the room they left.
	for i := uint64(0); i < 5000; i += 3 {
		if !tb.del(key(i)) {
			t.Fatalf("del(key(%d)) found nothing", i)
		}
		delete(m, key(i))
	}
	if tb.del(key(0)) {
		t.Fatal("a key removed twice")
	}
	checkTable(t, &tb, m)
	slots := len(tb.keys)
	for i := uint64(0); i < 5000; i += 6 {
		tb.put(key(i), i, 1)
		m[key(i)] = tableEntry{i, 1}
	}
	checkTable(t, &tb, m)
	if len(tb.keys) != slots {
		t.Errorf("putting back fewer keys than were removed grew the table from %d to %d slots", slots, len(tb.keys))
	}
	// Removed by kind, then all but a few: the table shrinks.
	n := tb.deleteFunc(func(kind uint32) bool { return kind == 3 })
	want := 0
	for k, e := range m {
		if e.kind == 3 {
			delete(m, k)
			want++
		}
	}
	if n != want || n == 0 {
		t.Errorf("deleteFunc removed %d, want %d", n, want)
	}
	checkTable(t, &tb, m)
	for k := range m {
		if len(m) == 3 {
			break
		}
		tb.del(k)
		delete(m, k)
	}
	checkTable(t, &tb, m)
	if len(tb.keys) != idTableMin {
		t.Errorf("%d keys left in %d slots, want %d", len(m), len(tb.keys), idTableMin)
	}
}

// TestIDTableRuns: keys that share their home, and runs that wrap past the
// table's last slot, are found, removed and dropped by kind as any other.
func TestIDTableRuns(t *testing.T) {
	var tb idTable
	tb.put(key(0), 0, 0) // make the table, and its seed
	m := map[[16]byte]tableEntry{key(0): {0, 0}}
	last := len(tb.keys) - 1
	var near, far [][16]byte // homes at the last slot, and at slot 0
	for i := uint64(1); len(near) < 4 || len(far) < 4; i++ {
		switch k := key(i); tb.home(&k) {
		case last:
			near = append(near, k)
		case 0:
			far = append(far, k)
		}
	}
	tb.del(key(0))
	delete(m, key(0))
	for i := range 4 {
		for _, k := range [][16]byte{near[i], far[i]} {
			tb.put(k, uint64(i), uint32(i%2))
			m[k] = tableEntry{uint64(i), uint32(i % 2)}
		}
	}
	if len(tb.keys) != idTableMin {
		t.Fatalf("%d slots, want %d", len(tb.keys), idTableMin)
	}
	checkTable(t, &tb, m)
	tb.del(near[0]) // at the last slot: the wrapped run shifts back past the end
	delete(m, near[0])
	checkTable(t, &tb, m)
	if n := tb.deleteFunc(func(kind uint32) bool { return kind == 1 }); n != 4 {
		t.Errorf("deleteFunc removed %d, want 4", n)
	}
	for k, e := range m {
		if e.kind == 1 {
			delete(m, k)
		}
	}
	checkTable(t, &tb, m)
}

// FuzzIDTable: any sequence of puts, removals and drops by kind leaves the
// table answering as a map of the same does. Each operation is three
// bytes: what, and a key and a kind drawn from few, so that keys meet
// again.
func FuzzIDTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 2, 3, 1, 1, 0, 2, 0, 1})
	f.Add(bytes.Repeat([]byte{0, 7, 1, 0, 9, 2, 1, 7, 0}, 40))
	f.Fuzz(func(t *testing.T, ops []byte) {
		var tb idTable
		m := map[[16]byte]tableEntry{}
		for i := 0; i+2 < len(ops); i += 3 {
			k, kind := key(uint64(ops[i+1])), uint32(ops[i+2]%8)
			switch ops[i] % 4 {
			case 0, 1:
				tb.put(k, uint64(i), kind)
				m[k] = tableEntry{uint64(i), kind}
			case 2:
				_, in := m[k]
				if tb.del(k) != in {
					t.Fatalf("op %d: del(%x) = %v, reference %v", i, k, !in, in)
				}
				delete(m, k)
			case 3:
				want := 0
				for mk, e := range m {
					if e.kind == kind {
						delete(m, mk)
						want++
					}
				}
				if n := tb.deleteFunc(func(kd uint32) bool { return kd == kind }); n != want {
					t.Fatalf("op %d: deleteFunc removed %d, reference %d", i, n, want)
				}
			}
		}
		checkTable(t, &tb, m)
	})
}

// TestIDTableAllocs: a lookup, a removal and a put that does not grow the
// table allocate nothing.
func TestIDTableAllocs(t *testing.T) {
	var tb idTable
	for i := range uint64(100) {
		tb.put(key(i), i, 0)
	}
	if n := testing.AllocsPerRun(100, func() {
		tb.get(key(5))
		tb.del(key(5))
		tb.put(key(5), 5, 0)
	}); n != 0 {
		t.Errorf("%v allocations a lookup, removal and put", n)
	}
}

// TestActionKindNumbers: kinds get numbers while they have an action in
// flight, and give them back, to be used again, when they have none.
func TestActionKindNumbers(t *testing.T) {
	st := NewState()
	a, b := &Task{ID: "tsk_a"}, &Task{ID: "tsk_b"}
	ids := []string{newID("act"), newID("act"), newID("act"), "act_foreign"}
	st.fly(a, ids[0], "j", "t", "read", 1)
	st.fly(a, ids[1], "j", "t", "write", 2)
	st.fly(b, ids[2], "j2", "t", "read", 3)
	st.fly(b, ids[3], "j2", "t", "read", 4)
	if len(st.actions.kinds) != 3 || len(st.actions.free) != 0 {
		t.Fatalf("%d kinds numbered, %d free; want 3, 0", len(st.actions.kinds), len(st.actions.free))
	}
	f, ok := st.actions.get(ids[1])
	if !ok || f.kind.taskID != "tsk_a" || f.kind.operation != "write" || f.index != 2 {
		t.Fatalf("get(%s) = %+v, %v", ids[1], f, ok)
	}
	st.land(ids[1], f)
	if len(st.actions.free) != 1 || f.kind.num != 0 {
		t.Fatalf("a kind landed keeps number %d, %d free", f.kind.num, len(st.actions.free))
	}
	st.fly(a, newID("act"), "j", "t", "delete", 5)
	if len(st.actions.kinds) != 3 || len(st.actions.free) != 0 {
		t.Fatalf("the free number was not used again: %d kinds numbered, %d free", len(st.actions.kinds), len(st.actions.free))
	}
	if n := st.actions.dropTasks(map[string]bool{"tsk_b": true}); n != 2 || st.actions.len() != 2 {
		t.Fatalf("dropTasks dropped %d, %d left", n, st.actions.len())
	}
	if len(st.actions.free) != 1 {
		t.Errorf("a dropped task's kind keeps its number: %d free", len(st.actions.free))
	}
	for _, id := range ids[:1] {
		if f, ok := st.actions.get(id); !ok || f.kind.num == 0 || st.actions.kinds[f.kind.num-1] != f.kind {
			t.Errorf("get(%s) = %+v, %v", id, f, ok)
		}
	}
}
