package task

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"time"

	"github.com/writhq/writ/api"
)

// A snapshot is the State as of a ledger index, encoded so that a start can
// load it and replay only the events after it (snapstore.go). The ledger
// stays the source of truth: a snapshot is checked against it before use,
// `writ ledger verify` compares it with a replay, and any doubt means a
// replay from the first event.
//
// The encoding is canonical: a State encodes to the same bytes as any other
// that answers the same, whatever order its concurrent commits were applied
// in. Lists whose order comes from the ledger are written in ledger order
// (a task's event indexes, its step-ups); maps in key order; windows
// without buckets that can no longer count. Left out are the bodies the
// state keeps (a task's intent, a step-up's arguments), which are read
// from the store at load so that an erasure leaves no copy behind, and
// the holds of calls being decided, which live only while they are, and
// the details the state caches of its latest actions (flight.go).

// snapshotVersion is the encoding's version. It must change whenever the
// encoding, or what Replay makes of an event, changes: a snapshot of
// another version is not loaded (the start replays from the first event).
const snapshotVersion = 5

const snapshotMagic = "writ-task-state\n"

// snapHeader is what a snapshot says of itself.
type snapHeader struct {
	version uint64
	// through is the last ledger index the state applied.
	through uint64
	// swept is when forgetActions last ran, at the snapshot: a replay
	// compared with it forgets as of the same time.
	swept time.Time
}

// encodeState encodes st as of index through, after forgetting what
// forgetActions would at swept. The caller holds the lock guarding st.
func encodeState(st *State, through uint64, swept time.Time) []byte {
	st.forgetActions(swept)
	return encodeAsIs(st, through, swept)
}

// encodeAsIs encodes st as it is, forgetting nothing: decoded, it is a
// copy of st.
func encodeAsIs(st *State, through uint64, swept time.Time) []byte {
	w := &snapWriter{seen: map[string]uint64{}}
	encodeInto(w, st, through, swept)
	return w.b
}

// streamState is encodeAsIs handing the encoding to put a part at a time
// (partSize bytes, the last fewer) rather than gathering it: encoding a
// large state takes about a part of memory besides the state. It returns
// the encoding's SHA-256, and the first error of put.
func streamState(st *State, through uint64, swept time.Time, put func(p []byte) error) (sum []byte, size int, err error) {
	out := newSnapOut(put)
	w := streamWriter(out)
	encodeInto(w, st, through, swept)
	sum, err = w.finish()
	return sum, out.size, err
}

func encodeInto(w *snapWriter, st *State, through uint64, swept time.Time) {
	w.b = append(w.b, snapshotMagic...)
	w.u(snapshotVersion)
	w.u(through)
	w.time(swept)

	w.u(uint64(len(st.order)))
	for _, id := range st.order {
		encodeTask(w, st.tasks[id], st.events[id])
	}
	w.u(uint64(len(st.approvals)))
	for _, id := range slices.Sorted(maps.Keys(st.approvals)) {
		encodeApproval(w, st.approvals[id])
	}
	w.u(uint64(len(st.creds)))
	for _, jti := range slices.Sorted(maps.Keys(st.creds)) {
		c := st.creds[jti]
		w.strs(c.JTI, c.TaskID, c.Agent, c.Subject, c.Binding)
		w.flag(c.Revoked)
		w.time(c.ExpiresAt)
		w.time(c.RevokedAt)
	}
	w.u(uint64(len(st.paths)))
	for _, k := range slices.Sorted(maps.Keys(st.paths)) {
		w.raw(k)
		w.list(st.paths[k])
	}
	w.u(uint64(st.actions.len()))
	st.actions.eachID(func(id []byte, f flight) { encodeAction(w, id, f) })
	encodeRest(w, st) // snaphistory.go
}

func encodeTask(w *snapWriter, t *Task, events *eventList) {
	w.strs(t.ID, string(t.State), t.Requester, t.Agent)
	encodeScope(w, t.Scope)
	w.strs(t.ScopeHash, t.Parent, t.Environment, t.PolicyVersion, t.ApprovalID)
	w.i(int64(t.TTL))
	w.list(t.Children)
	w.list(t.Reasons)
	w.raw(t.DecisionID)
	w.u(uint64(t.ApprovalsRequired))
	for _, at := range []time.Time{t.CreatedAt, t.ExpiresAt, t.EndedAt} {
		w.time(at)
	}
	w.str(t.EndReason)
	w.u(t.RequestedIndex)
	w.list(t.Credentials)
	w.flag(t.Hold != nil)
	if h := t.Hold; h != nil {
		w.u(h.Index)
		w.str(h.By)
		w.raw(h.Reason)
		w.time(h.At)
	}
	// Written as differences in ascending order, from the list itself
	// when it is in that order (a million calls' indexes are not copied
	// out), sorted when concurrent commits applied them out of order.
	var last uint64
	delta := func(i uint64) {
		w.u(i - last)
		last = i
	}
	if events.ascending() {
		w.u(uint64(events.len()))
		events.each(delta)
		return
	}
	idx := events.all()
	slices.Sort(idx)
	w.u(uint64(len(idx)))
	for _, i := range idx {
		delta(i)
	}
}

func encodeScope(w *snapWriter, s Scope) {
	for _, l := range [][]string{s.Tools, s.Resources, s.Operations} {
		w.list(l)
	}
	w.str(s.DataClass)
	w.list(s.Environments)
	w.flag(s.Limits != nil)
	if l := s.Limits; l != nil {
		optInt(w, l.Calls)
		optInt(w, l.PerMinute)
		w.flag(l.PerTool != nil)
		w.u(uint64(len(l.PerTool)))
		for _, k := range slices.Sorted(maps.Keys(l.PerTool)) {
			w.str(k)
			w.i(l.PerTool[k])
		}
	}
}

func optInt(w *snapWriter, v *int64) {
	w.flag(v != nil)
	if v != nil {
		w.i(*v)
	}
}

func encodeApproval(w *snapWriter, a *Approval) {
	w.strs(a.ID, a.Kind, a.TaskID, a.ScopeHash, a.PolicyVersion)
	w.u(uint64(a.Required))
	w.time(a.ExpiresAt)
	w.list(a.Reasons)
	w.strs(a.Tool, a.Operation, a.Resource, a.DataClass)
	w.raw(a.ArgsMAC)
	w.raw(a.LegacyDigest)
	w.u(a.RequestedIndex)
	w.u(uint64(len(a.Decisions)))
	for _, d := range a.Decisions {
		w.strs(d.Approver, d.Decision)
		w.raw(d.Reason)
		w.time(d.Time)
	}
	w.strs(a.Status, a.UsedBy)
}

// encodeAction writes an action in flight: what the state keeps of it
// (flight.go). The details a result needs are read back from its
// action.authorized after a start from the snapshot.
func encodeAction(w *snapWriter, id []byte, f flight) {
	w.rawBytes(id)
	w.strs(f.kind.taskID, f.kind.jti, f.kind.tool, f.kind.operation)
	w.u(f.index)
}

// decodeState decodes a snapshot; an error wraps errCorrupt. Bodies are
// not in it: the caller reads them (loadSnapshotBodies).
func decodeState(b []byte) (*State, snapHeader, error) {
	var h snapHeader
	if len(b) < len(snapshotMagic) || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, h, errCorrupt
	}
	r := &snapReader{b: b[len(snapshotMagic):]}
	h.version = r.u()
	if r.err == nil && h.version != snapshotVersion {
		r.fail("version %d, not %d", h.version, snapshotVersion)
	}
	h.through = r.u()
	h.swept = r.time()
	st := NewState()
	// Each count sizes its map before it fills: growing a map of half a
	// million entries rehashes it a dozen times.
	n := r.count()
	st.tasks, st.events, st.order = make(map[string]*Task, n), make(map[string]*eventList, n), make([]string, 0, n)
	for ; n > 0 && r.err == nil; n-- {
		decodeTask(r, st)
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		a := decodeApproval(r, st)
		if r.err == nil && (st.tasks[a.TaskID] == nil || st.approvals[a.ID] != nil) {
			r.fail("approval %s", a.ID)
		}
		st.approvals[a.ID] = a
	}
	n = r.count()
	st.creds = make(map[string]*Credential, n)
	for ; n > 0 && r.err == nil; n-- {
		decodeCredential(r, st)
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		k := r.raw()
		st.paths[k] = r.list()
	}
	// The actions in flight, sized like the maps above: half a million
	// of them grew the tables that hold them a dozen times.
	n = r.count()
	st.flights = make(map[string]*taskFlights, min(n, len(st.tasks)))
	for i := 0; i < n && r.err == nil; i++ {
		decodeAction(r, st, n-i)
	}
	decodeRest(r, st)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return nil, h, r.err
	}
	return st, h, nil
}

func decodeTask(r *snapReader, st *State) {
	t := r.tasks.one()
	*t = Task{ID: r.str(), State: Status(r.str()), Requester: r.str(), Agent: r.str(), Scope: decodeScope(r),
		ScopeHash: r.str(), Parent: r.str(), Environment: r.str(), PolicyVersion: r.str(), ApprovalID: r.str(),
		TTL: time.Duration(r.i()), Children: r.list(), Reasons: r.list(), DecisionID: r.raw(),
		ApprovalsRequired: r.int(1 << 30), CreatedAt: r.time(), ExpiresAt: r.time(), EndedAt: r.time(),
		EndReason: r.str(), RequestedIndex: r.u(), Credentials: r.list()}
	if r.flag() {
		t.Hold = &Hold{Index: r.u(), By: r.str(), Reason: r.raw(), At: r.time()}
	}
	l := decodeEvents(r)
	if r.err != nil {
		return
	}
	// A parent is requested before its children, so no chain of parents
	// loops.
	if st.tasks[t.ID] != nil || (t.Parent != "" && st.tasks[t.Parent] == nil) {
		r.fail("task %s", t.ID)
		return
	}
	st.tasks[t.ID] = t
	st.events[t.ID] = l
	st.order = append(st.order, t.ID)
}

// decodeEvents decodes a task's event indexes: the list add would make of
// them, packed into the slab's bytes at once.
func decodeEvents(r *snapReader) *eventList {
	l := r.events.one()
	var b [binary.MaxVarintLen64 * 32]byte
	packed := b[:0]
	for n := r.count(); n > 0 && r.err == nil; n-- {
		d := r.u()
		packed = binary.AppendVarint(packed, int64(d))
		l.last += d
		l.n++
	}
	if len(packed) > 0 {
		l.b = r.bytes.many(len(packed))
		copy(l.b, packed)
	}
	return l
}

func decodeScope(r *snapReader) Scope {
	s := Scope{Tools: r.list(), Resources: r.list(), Operations: r.list(), DataClass: r.str(), Environments: r.list()}
	if !r.flag() {
		return s
	}
	l := &api.Limits{Calls: optIntRead(r), PerMinute: optIntRead(r)}
	if r.flag() {
		l.PerTool = map[string]int64{}
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		if l.PerTool == nil {
			r.fail("per_tool")
			break
		}
		k := r.str()
		l.PerTool[k] = r.i()
	}
	s.Limits = l
	return s
}

func optIntRead(r *snapReader) *int64 {
	if !r.flag() {
		return nil
	}
	v := r.i()
	return &v
}

func decodeApproval(r *snapReader, st *State) *Approval {
	a := &Approval{ID: r.str(), Kind: r.str(), TaskID: taskRef(r, st), ScopeHash: r.str(), PolicyVersion: r.str(),
		Required: r.int(1 << 30), ExpiresAt: r.time(), Reasons: r.list(), Tool: r.str(), Operation: r.str(),
		Resource: r.str(), DataClass: r.str(), ArgsMAC: r.raw(), LegacyDigest: r.raw(), RequestedIndex: r.u()}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		a.Decisions = append(a.Decisions, Decision{Approver: r.str(), Decision: r.str(), Reason: r.raw(), Time: r.time()})
	}
	a.Status, a.UsedBy = r.str(), r.str()
	return a
}

// decodeCredential decodes a credential of a task decoded before it.
func decodeCredential(r *snapReader, st *State) {
	jti := r.str()
	taskID, t, _ := strIn(r, st.tasks, (*Task).id)
	c := r.creds.one()
	*c = Credential{JTI: jti, TaskID: taskID, Agent: r.str(), Subject: r.str(), Binding: r.str(),
		Revoked: r.flag(), ExpiresAt: r.time(), RevokedAt: r.time()}
	if r.err == nil && (t == nil || st.creds[c.JTI] != nil) {
		r.fail("credential %s", c.JTI)
	}
	st.creds[c.JTI] = c
}

// decodeAction decodes an action in flight, the first of left more.
func decodeAction(r *snapReader, st *State, left int) {
	id := r.raw()
	if st.actions.len() == 0 {
		st.actions.reserve(left, id)
	}
	_, t, _ := strIn(r, st.tasks, (*Task).id)
	if t == nil {
		r.fail("action %s", id)
		return
	}
	// The kind keeps the task's own copy of the JTI.
	jti := r.strAmong(t.Credentials)
	tool, op, index := r.name(), r.name(), r.u()
	if r.err != nil {
		return
	}
	if _, dup := st.actions.get(id); dup {
		r.fail("action %s", id)
		return
	}
	st.flyFrom(&r.flights, t, id, jti, tool, op, index)
}

// taskRef reads the ID of a task decoded before, as strIn does.
func taskRef(r *snapReader, st *State) string {
	id, _, _ := strIn(r, st.tasks, (*Task).id)
	return id
}

func (t *Task) id() string { return t.ID }

// checkLinks reports a decoded state whose tasks name children that are
// not theirs, which walks down a task tree would trip on.
func checkLinks(r *snapReader, st *State) {
	for _, id := range st.order {
		for _, c := range st.tasks[id].Children {
			if ct := st.tasks[c]; ct == nil || ct.Parent != id {
				r.fail("task %s: child %s", id, c)
				return
			}
		}
	}
}

// byIndex orders step-ups as the ledger requested them.
func byIndex(st *State) func(a, b string) int {
	return func(a, b string) int {
		x, y := st.approvals[a], st.approvals[b]
		if x == nil || y == nil {
			return cmp.Compare(a, b)
		}
		return cmp.Compare(x.RequestedIndex, y.RequestedIndex)
	}
}
