package task

import (
	"context"
	"encoding/base32"
	"fmt"
	"maps"
	"slices"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Actions in flight. An action authorized whose result is not recorded yet
// stays in the state until its result comes or its task is forgotten
// (forget.go), and a task driven through /v1/authorize alone may leave a
// million of them. So the state keeps of each only what a result and the
// counters need, in a few dozen bytes: its task, credential, tool and
// operation (shared by every action of the task that has the same ones)
// and the ledger index of its action.authorized. The rest of what a result
// needs (the decision it answers, whether its output is kept, the paths to
// redact) is kept for the latest actions only (recentDetails), and read
// back from the action.authorized for older ones.

// flight is an action in flight.
type flight struct {
	kind *actionKind
	// index is the ledger index of its action.authorized.
	index uint64
}

// actionKind is what the actions in flight of a task that share their
// credential, tool and operation have in common: one copy for all of them,
// and how many they are.
type actionKind struct {
	taskID, jti, tool, operation string
	n                            int
	// num is its number in the actionSet's kinds plus one, 0 until it
	// has one.
	num uint32
}

// taskFlights is a task's part of the actions in flight: how many it has,
// and their kinds by credential, tool and operation. Only tasks with an
// action in flight have one, and only kinds with an action in flight are
// in it, so that it is the same whatever came before. Most tasks have
// one kind in flight at a time: it is held in first, and only the others
// in a map, which would take several hundred bytes a task.
type taskFlights struct {
	n     int
	first *actionKind
	more  map[[3]string]*actionKind
}

func kindKey(k *actionKind) [3]string { return [3]string{k.jti, k.tool, k.operation} }

// kind returns the kind of key in flight, nil when there is none.
func (tf *taskFlights) kind(key [3]string) *actionKind {
	if k := tf.first; k != nil && kindKey(k) == key {
		return k
	}
	return tf.more[key]
}

func (tf *taskFlights) add(k *actionKind) {
	if tf.first == nil {
		tf.first = k
		return
	}
	if tf.more == nil {
		tf.more = map[[3]string]*actionKind{}
	}
	tf.more[kindKey(k)] = k
}

func (tf *taskFlights) remove(k *actionKind) {
	if tf.first == k {
		tf.first = nil
		return
	}
	delete(tf.more, kindKey(k))
}

// each calls fn with each kind in flight.
func (tf *taskFlights) each(fn func(k *actionKind)) {
	if tf.first != nil {
		fn(tf.first)
	}
	for _, k := range tf.more {
		fn(k)
	}
}

// actionSet holds the actions in flight by ID. IDs of the form writ gives
// them (newID: "act_" and 26 base32 characters) are keyed by their 16
// bytes in a table of their own (idtable.go), which names their kind by
// number; any other, which only a foreign writer could have recorded, by
// the string in a map.
type actionSet struct {
	ids   idTable
	other map[string]flight
	// kinds are the kinds of the actions in flight by number, nil where
	// a number is free; free are the free numbers.
	kinds []*actionKind
	free  []uint32
}

func (s *actionSet) get(id string) (flight, bool) {
	if k, ok := parseID("act", id); ok {
		index, num, ok := s.ids.get(k)
		if !ok {
			return flight{}, false
		}
		return flight{kind: s.kinds[num], index: index}, true
	}
	f, ok := s.other[id]
	return f, ok
}

// reserve makes room for n actions in flight, of IDs in the form of id:
// one writer's are all in writ's form (newID) or none are.
func (s *actionSet) reserve(n int, id string) {
	if s.kinds == nil {
		s.kinds = make([]*actionKind, 0, n)
	}
	if _, ok := parseID("act", id); !ok {
		if s.other == nil {
			s.other = make(map[string]flight, n)
		}
		return
	}
	if s.ids.n == 0 {
		// put grows a table past idTableLoad full; this is just under.
		s.ids.resize(max(idTableMin, n+n/4+2))
	}
}

func (s *actionSet) put(id string, f flight) {
	k := f.kind
	if k.num == 0 {
		if n := len(s.free); n > 0 {
			k.num = s.free[n-1] + 1
			s.free = s.free[:n-1]
			s.kinds[k.num-1] = k
		} else {
			// Each number is of a kind with an action in flight: there
			// are never more than actions.
			s.kinds = append(s.kinds, k)
			k.num = uint32(len(s.kinds))
		}
	}
	if key, ok := parseID("act", id); ok {
		s.ids.put(key, f.index, k.num-1)
		return
	}
	if s.other == nil {
		s.other = map[string]flight{}
	}
	s.other[id] = f
}

// release frees the number of kind k, which has no action in flight left.
func (s *actionSet) release(k *actionKind) {
	if k.num == 0 {
		return
	}
	s.kinds[k.num-1] = nil
	s.free = append(s.free, k.num-1)
	k.num = 0
}

func (s *actionSet) del(id string) {
	if k, ok := parseID("act", id); ok {
		s.ids.del(k)
		return
	}
	delete(s.other, id)
}

func (s *actionSet) len() int { return s.ids.len() + len(s.other) }

// each calls fn for every action in flight in one order, whatever order
// they came in: those keyed by their bytes in the bytes' order, then the
// others in their IDs' order.
func (s *actionSet) each(fn func(id string, f flight)) {
	s.eachID(func(id []byte, f flight) { fn(string(id), f) })
}

// eachID is each with the ID in bytes that are fn's only while it runs:
// formatted into one buffer, so that a snapshot of a million actions
// makes no string of theirs.
func (s *actionSet) eachID(fn func(id []byte, f flight)) {
	var buf [64]byte
	s.ids.each(func(k [16]byte, index uint64, num uint32) {
		fn(appendID(buf[:0], "act", k), flight{kind: s.kinds[num], index: index})
	})
	for _, id := range slices.Sorted(maps.Keys(s.other)) {
		fn([]byte(id), s.other[id])
	}
}

// dropTasks removes the actions of the tasks in ids, and returns how many.
// The caller drops the tasks' flights.
func (s *actionSet) dropTasks(ids map[string]bool) int {
	drop := make([]bool, len(s.kinds))
	for i, k := range s.kinds {
		drop[i] = k != nil && ids[k.taskID]
	}
	n := s.ids.deleteFunc(func(num uint32) bool { return drop[num] })
	for id, f := range s.other {
		if ids[f.kind.taskID] {
			delete(s.other, id)
			n++
		}
	}
	for i, k := range s.kinds {
		if drop[i] {
			s.release(k)
		}
	}
	return n
}

// b32 maps newID's lowercase base32 alphabet to its values; 0xff marks a
// byte outside it.
var b32 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		t[c] = byte(i)
	}
	return t
}()

// parseID returns the 16 bytes of an ID newID(prefix) gave, and false for
// any other string, including one that decodes to the same bytes but is
// not what newID writes for them.
func parseID(prefix, id string) (k [16]byte, ok bool) {
	if len(id) != len(prefix)+1+26 || id[:len(prefix)] != prefix || id[len(prefix)] != '_' {
		return k, false
	}
	s := id[len(prefix)+1:]
	var acc uint64
	bits, n := 0, 0
	for i := 0; i < len(s); i++ {
		v := b32[s[i]]
		if v == 0xff {
			return k, false
		}
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			k[n] = byte(acc >> bits)
			n++
		}
	}
	// 26 characters carry 130 bits: the last two must be zero, as
	// base32 writes them.
	return k, acc&(1<<bits-1) == 0
}

// lowerB32 is newID's encoding: base32 in lower case, unpadded.
var lowerB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// formatID is the inverse of parseID.
func formatID(prefix string, k [16]byte) string {
	var buf [64]byte
	return string(appendID(buf[:0], prefix, k))
}

// appendID appends formatID's ID to b.
func appendID(b []byte, prefix string, k [16]byte) []byte {
	b = append(append(b, prefix...), '_')
	return lowerB32.AppendEncode(b, k[:])
}

// detail is what a result needs of its action beyond its flight.
type detail struct {
	decisionID   string
	recordOutput bool
	redact       []string
}

// detailsKept is how many actions' details the state keeps (a variable
// for tests): a result that comes later reads them from the ledger. At the
// decision API's peak that is a few seconds of calls, longer than most
// tools take to answer; a slower one costs its result one read.
var detailsKept = 1 << 14

// recentDetails keeps the details of the latest detailsKept actions
// authorized, in a ring. It is a cache: the state is the same without it,
// which is why a snapshot (snapshot.go) leaves it out. The ring's slots
// are found by ID in an idTable, not a Go map: a map whose keys come and
// go settles at about four times the room of those it holds (about 10 MB
// for 16,384 details), where the table, which leaves no tombstones, keeps
// about 28 bytes a slot.
type recentDetails struct {
	// slots names each ID's slot of keys and vals (as the idTable's
	// index).
	slots idTable
	keys  [][16]byte
	vals  []detail
	next  int
}

func (r *recentDetails) add(id string, d detail) {
	k, ok := parseID("act", id)
	if !ok || detailsKept <= 0 {
		return
	}
	if slot, _, ok := r.slots.get(k); ok {
		r.vals[slot] = d
		return
	}
	if r.keys == nil {
		r.keys = make([][16]byte, 0, detailsKept)
		r.vals = make([]detail, 0, detailsKept)
	}
	slot := len(r.keys)
	if slot < detailsKept {
		r.keys, r.vals = append(r.keys, k), append(r.vals, d)
	} else {
		slot = r.next
		r.next = (r.next + 1) % len(r.keys)
		if at, _, ok := r.slots.get(r.keys[slot]); ok && int(at) == slot {
			r.slots.del(r.keys[slot])
		}
		r.keys[slot], r.vals[slot] = k, d
	}
	r.slots.put(k, uint64(slot), 0)
}

func (r *recentDetails) get(id string) (detail, bool) {
	k, ok := parseID("act", id)
	if !ok {
		return detail{}, false
	}
	slot, _, ok := r.slots.get(k)
	if !ok {
		return detail{}, false
	}
	return r.vals[slot], true
}

func (r *recentDetails) del(id string) {
	k, ok := parseID("act", id)
	if !ok {
		return
	}
	if slot, _, ok := r.slots.get(k); ok {
		r.slots.del(k)
		r.vals[slot] = detail{}
	}
}

// fly adds action id of task t, authorized with credential jti at ledger
// index index, to the actions in flight.
func (s *State) fly(t *Task, id, jti, tool, operation string, index uint64) {
	s.flyFrom(nil, t, id, jti, tool, operation, index)
}

// flightSlabs are what a snapshot's decoder makes a task's flights and
// kinds from (snapslab.go), half a million of each in a large state.
type flightSlabs struct {
	flights slab[taskFlights]
	kinds   slab[actionKind]
}

// flyFrom is fly, taking what it makes from fs unless fs is nil.
func (s *State) flyFrom(fs *flightSlabs, t *Task, id, jti, tool, operation string, index uint64) {
	tf := s.flights[t.ID]
	if tf == nil {
		if fs != nil {
			tf = fs.flights.one()
		} else {
			tf = &taskFlights{}
		}
		s.flights[t.ID] = tf
	}
	key := [3]string{jti, tool, operation}
	k := tf.kind(key)
	if k == nil {
		if fs != nil {
			k = fs.kinds.one()
		} else {
			k = new(actionKind)
		}
		*k = actionKind{taskID: t.ID, jti: jti, tool: tool, operation: operation}
		tf.add(k)
	}
	k.n++
	tf.n++
	s.actions.put(id, flight{kind: k, index: index})
}

// land removes action id, in flight as f, from the actions in flight.
func (s *State) land(id string, f flight) {
	s.actions.del(id)
	s.details.del(id)
	k := f.kind
	if k.n--; k.n == 0 {
		s.actions.release(k)
	}
	tf := s.flights[k.taskID]
	if tf == nil {
		return
	}
	if k.n == 0 {
		tf.remove(k)
	}
	if tf.n--; tf.n == 0 {
		delete(s.flights, k.taskID)
	}
}

// inFlight returns how many actions task taskID has in flight.
func (s *State) inFlight(taskID string) int {
	if tf := s.flights[taskID]; tf != nil {
		return tf.n
	}
	return 0
}

// actionDetail returns the details of action id, in flight as f: from the
// ring, or from its action.authorized in the ledger.
func (s *Service) actionDetail(ctx context.Context, id string, f flight) (detail, error) {
	s.smu.Lock()
	d, ok := s.st.details.get(id)
	s.smu.Unlock()
	if ok {
		return d, nil
	}
	e, err := entryAt(ctx, s.cfg.Store, f.index)
	if err != nil {
		return detail{}, fmt.Errorf("%w: reading action %s at %d: %v", ledger.ErrUnavailable, id, f.index, err)
	}
	var a event.ActionDecided
	if err := decode(e, &a); err != nil || e.Event.Type != ledger.TypeActionAuthorized || a.ActionID != id ||
		e.Event.TaskID != f.kind.taskID {
		return detail{}, fmt.Errorf("%w: the event at %d is not the authorization of action %s", ledger.ErrUnavailable, f.index, id)
	}
	return actionDetailOf(e.Event.DecisionID, &a), nil
}

func actionDetailOf(decisionID string, a *event.ActionDecided) detail {
	return detail{decisionID: decisionID, recordOutput: a.Obligations.RecordOutput == nil || *a.Obligations.RecordOutput,
		redact: a.Obligations.Redact}
}
