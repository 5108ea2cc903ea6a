package task

import (
	"cmp"
	"maps"
	"slices"

	"github.com/writhq/writ/internal/policy"
)

// The snapshot's second half (snapshot.go): what State keeps besides
// tasks, approvals, credentials and actions — ended tasks whose actions
// are kept, the recent completions, skipped events, the counters of
// policy's history and of limits, and lifted holds.

func encodeRest(w *snapWriter, st *State) {
	w.u(uint64(len(st.endedTasks)))
	for _, et := range st.endedTasks {
		w.str(et.id)
		w.time(et.until)
	}
	recent := slices.Clone(st.recent.heap)
	slices.SortFunc(recent, func(a, b recentEntry) int { return cmp.Compare(a.index, b.index) })
	w.u(uint64(len(recent)))
	for _, e := range recent {
		w.raw(e.id)
		w.str(st.recent.tasks[e.id])
		w.u(e.index)
	}
	w.u(uint64(st.skippedN))
	w.u(uint64(len(st.skipped)))
	for _, k := range st.skipped {
		w.u(k.Index)
		w.strs(k.Type, k.TaskID)
		w.raw(k.Reason)
	}
	w.u(uint64(len(st.history)))
	for _, id := range slices.Sorted(maps.Keys(st.history)) {
		w.str(id)
		encodeHistory(w, st, st.history[id])
	}
	w.u(uint64(len(st.agents)))
	for _, id := range slices.Sorted(maps.Keys(st.agents)) {
		w.str(id)
		encodeWindow(w, st.agents[id])
	}
	w.u(uint64(len(st.releases)))
	for _, rl := range st.releases {
		w.str(rl.TaskID)
		w.u(rl.Index)
	}
	// The calls in flight past the window (spill.go).
	w.u(st.maxAuthorized)
	w.u(uint64(len(st.spilled)))
	for _, id := range slices.Sorted(maps.Keys(st.spilled)) {
		w.str(id)
		w.u(uint64(st.spilled[id]))
	}
}

func encodeHistory(w *snapWriter, st *State, h *taskHistory) {
	encodeCalls(w, h.calls)
	for _, m := range []*keyed[policy.Calls]{&h.tools, &h.ops} {
		w.u(uint64(m.len()))
		for _, e := range m.sorted() {
			w.str(e.key)
			encodeCalls(w, e.v)
		}
	}
	w.i(int64(h.maxLevel))
	encodeWindow(w, h.win)
	for _, set := range []*keyed[struct{}]{&h.resources, &h.destinations} {
		w.flag(set.s != nil)
		w.u(uint64(set.len()))
		for _, e := range set.sorted() {
			w.str(e.key)
		}
	}
	stepUps := slices.Clone(h.stepUps)
	slices.SortStableFunc(stepUps, byIndex(st)) // requested by concurrent calls
	w.list(stepUps)
	w.flag(h.budget != nil)
	if b := h.budget; b != nil {
		w.i(b.calls)
		keys := make([]int, len(b.keys))
		for i := range keys {
			keys[i] = i
		}
		slices.SortFunc(keys, func(x, y int) int { return cmp.Compare(b.keys[x], b.keys[y]) })
		w.u(uint64(len(keys)))
		for _, i := range keys {
			w.str(b.keys[i])
			w.i(b.perTool[i])
		}
		encodeBuckets(w, &b.minute)
	}
}

func encodeCalls(w *snapWriter, c policy.Calls) {
	w.i(c.Allowed)
	w.i(c.Denied)
	w.i(c.InFlight)
}

// noWindow is the window a task without one encodes as: read, never
// written.
var noWindow window

func encodeWindow(w *snapWriter, win *window) {
	if win == nil {
		win = &noWindow
	}
	encodeBuckets(w, &win.secs)
	encodeBuckets(w, &win.mins)
}

// encodeBuckets writes the buckets that can still count: those holding
// calls of the newest unit or the 59 before it. An older one is a unit no
// window the ring answers for reaches, and a replay that forgot an
// agent's window and began it again has none.
func encodeBuckets(w *snapWriter, b *buckets) {
	newest, _ := b.newest()
	var live []int
	for i := range b {
		if x := b[i]; (x.allowed > 0 || x.denied > 0) && x.at > newest-int64(len(b)) {
			live = append(live, i)
		}
	}
	w.u(uint64(len(live)))
	for _, i := range live {
		w.i(b[i].at)
		w.u(uint64(b[i].allowed))
		w.u(uint64(b[i].denied))
	}
}

func decodeRest(r *snapReader, st *State) {
	for n := r.count(); n > 0 && r.err == nil; n-- {
		st.endedTasks = append(st.endedTasks, endedTask{id: r.str(), until: r.time()})
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		id, taskID, index := r.raw(), taskRef(r, st), r.u()
		if r.err == nil {
			st.recent.add(id, taskID, index)
		}
	}
	st.skippedN = r.int(1 << 62)
	for n := r.count(); n > 0 && r.err == nil; n-- {
		st.skipped = append(st.skipped, Skipped{Index: r.u(), Type: r.str(), TaskID: taskRef(r, st), Reason: r.raw()})
	}
	n := r.count()
	st.history = make(map[string]*taskHistory, n)
	for ; n > 0 && r.err == nil; n-- {
		id, t, ok := strIn(r, st.tasks, (*Task).id)
		if r.err == nil && (!ok || st.history[id] != nil) {
			r.fail("history of task %s", id)
			return
		}
		st.history[id] = decodeHistory(r, t)
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		id := r.str()
		w := &window{}
		decodeWindow(r, w)
		st.agents[id] = w
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		st.releases = append(st.releases, Release{TaskID: taskRef(r, st), Index: r.u()})
	}
	decodeSpilled(r, st)
	if r.err == nil {
		checkLinks(r, st)
	}
}

// decodeSpilled decodes the calls in flight past the window, after the
// table's (spill.go), which must all be within it.
func decodeSpilled(r *snapReader, st *State) {
	st.maxAuthorized = r.u()
	for n := r.count(); n > 0 && r.err == nil; n-- {
		id, _, ok := strIn(r, st.tasks, (*Task).id)
		c := r.int(1 << 40)
		if r.err == nil && (!ok || c == 0 || st.spilled[id] != 0) {
			r.fail("calls past the window of task %s", id)
			return
		}
		st.spilled[id] = c
		st.spilledN += c
	}
	if r.err != nil {
		return
	}
	st.rebuildQueue()
	if q := st.queue.q; len(q) > 0 && (q[len(q)-1].index > st.maxAuthorized || st.outOfWindow(q[0].index)) {
		r.fail("actions in flight at %d to %d, not all within the window below %d", q[0].index, q[len(q)-1].index, st.maxAuthorized)
	}
}

func decodeHistory(r *snapReader, t *Task) *taskHistory {
	h := r.history.one()
	h.calls = decodeCalls(r)
	for _, m := range []*keyed[policy.Calls]{&h.tools, &h.ops} {
		m.s = nil
		if n := r.count(); n > 0 {
			m.s = r.counts.many(n)
		}
		for i := range m.s {
			m.s[i].key = r.name()
			m.s[i].v = decodeCalls(r)
		}
		if r.err == nil && !m.decoded() {
			r.fail("counts out of order")
			return h
		}
	}
	h.maxLevel = int(r.i())
	var win window
	if decodeWindow(r, &win) {
		h.win = new(window)
		*h.win = win
	}
	for _, set := range []*keyed[struct{}]{&h.resources, &h.destinations} {
		some := r.flag()
		n := r.count()
		if r.err != nil || !some && n > 0 {
			r.fail("reached")
			return h
		}
		if some {
			set.s = r.reached.many(n)
		}
		for i := range set.s {
			set.s[i].key = r.name()
		}
		if r.err == nil && !set.decoded() {
			r.fail("reached out of order")
			return h
		}
	}
	h.stepUps = r.list()
	if !r.flag() {
		return h
	}
	if t.Scope.Limits == nil {
		r.fail("budget of task %s, which has no limits", t.ID)
		return h
	}
	b := &budget{limits: t.Scope.Limits, calls: r.i()}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		b.keys = append(b.keys, r.str())
		b.perTool = append(b.perTool, r.i())
	}
	decodeBuckets(r, &b.minute)
	h.budget = b
	return h
}

func decodeCalls(r *snapReader) policy.Calls {
	return policy.Calls{Allowed: r.i(), Denied: r.i(), InFlight: r.i()}
}

// decodeWindow decodes a window into w and reports whether it counts any
// call.
func decodeWindow(r *snapReader, w *window) bool {
	secs := decodeBuckets(r, &w.secs)
	mins := decodeBuckets(r, &w.mins)
	return secs || mins
}

// decodeBuckets decodes buckets into b and reports whether there were any.
func decodeBuckets(r *snapReader, b *buckets) bool {
	n := r.count()
	some := n > 0
	for ; n > 0 && r.err == nil; n-- {
		at, allowed, denied := r.i(), r.int(1<<32-1), r.int(1<<32-1)
		x := &b[floorMod(at, len(b))]
		if r.err == nil && (x.allowed > 0 || x.denied > 0) {
			r.fail("two buckets in one slot")
			return some
		}
		*x = bucket{at: at, allowed: uint32(allowed), denied: uint32(denied)}
	}
	return some
}
