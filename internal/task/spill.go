package task

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Calls in flight past the window. The state holds an action in flight in
// its table (flight.go) only while its action.authorized is among the
// latest flightWindow ledger indexes authorized: once the log has moved
// further on, the action leaves the table and its task keeps only a count
// of such calls (spilled). A late result for one is found in the store —
// the query index names its events, its action.authorized is read back
// and its completion looked for — and its action.completed names the tool
// and operation the counters need, so that replay applies it without the
// call in memory. So the state's memory no longer grows with the calls a
// task leaves in flight: the table holds at most flightWindow of them
// whatever their number, and a task past it a counter.
//
// Which calls are in the table is a function of the events applied, not of
// the order concurrent commits applied them in: a call is in it when its
// index is above the highest index authorized less flightWindow, and a
// snapshot (snapshot.go) writes the same bytes either way. Only calls
// whose IDs are in the form writ gives them spill; any other, which only
// a foreign writer could have recorded, stays in the table.

// flightWindow is how many ledger indexes back from the latest
// action.authorized a call stays in the table (a variable for tests). At
// the decision API's peak that is half a minute or more of calls; a result
// that comes later is looked up in the store, which costs it a catch-up of
// the query index and a read or two. A change of it changes what a
// snapshot holds, so it goes with snapshotVersion.
var flightWindow uint64 = 1 << 18

// spillQueue holds the table's calls in writ's ID form by ledger index,
// ascending, so that those falling out of the window are found without a
// walk of the table. A call that left the table some other way (completed,
// forgotten) stays queued until the window passes it, when it is dropped:
// the queue holds at most the calls authorized within the window.
type spillQueue struct {
	q    []spillEntry
	head int
}

type spillEntry struct {
	index uint64
	key   [16]byte
}

// push queues key at index. Calls come in nearly ascending order (in
// order at replay, out of it by a few among concurrent commits), so an
// insertion walks back a step or two at most.
func (q *spillQueue) push(index uint64, key [16]byte) {
	q.q = append(q.q, spillEntry{index: index, key: key})
	for i := len(q.q) - 1; i > q.head && q.q[i-1].index > index; i-- {
		q.q[i-1], q.q[i] = q.q[i], q.q[i-1]
	}
}

// popThrough calls fn with every entry of index at or below through, in
// order, and drops them.
func (q *spillQueue) popThrough(through uint64, fn func(spillEntry)) {
	for q.head < len(q.q) && q.q[q.head].index <= through {
		fn(q.q[q.head])
		q.head++
	}
	if q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	} else if q.head > len(q.q)/2 && q.head > 1024 {
		q.q = q.q[:copy(q.q, q.q[q.head:])]
		q.head = 0
	}
}

// outOfWindow reports whether a call authorized at index has left, or
// never entered, the table.
func (s *State) outOfWindow(index uint64) bool {
	return s.maxAuthorized >= flightWindow && index <= s.maxAuthorized-flightWindow
}

// flyWindowed adds an action authorized at index to the actions in
// flight: to the table when it is within the window, to its task's count
// when it is not (it reports which); then moves the calls the window has
// passed from the table to their tasks' counts.
func (s *State) flyWindowed(t *Task, id, jti, tool, operation string, index uint64) (inTable bool) {
	s.maxAuthorized = max(s.maxAuthorized, index)
	key, ours := parseID("act", id)
	inTable = !ours || !s.outOfWindow(index)
	if !inTable {
		s.spill(t.ID)
	} else {
		s.fly(t, id, jti, tool, operation, index)
		if ours {
			s.queue.push(index, key)
		}
	}
	if s.maxAuthorized < flightWindow {
		return inTable
	}
	s.queue.popThrough(s.maxAuthorized-flightWindow, func(e spillEntry) {
		at, num, ok := s.actions.ids.get(e.key)
		if !ok || at != e.index {
			return // it left the table already
		}
		k := s.actions.kinds[num]
		taskID := k.taskID
		s.land(formatID("act", e.key), flight{kind: k, index: at})
		s.spill(taskID)
	})
	return inTable
}

func (s *State) spill(taskID string) {
	s.spilled[taskID]++
	s.spilledN++
}

// unspill takes a call of task taskID off its count: its result came, or
// the task was forgotten (n calls).
func (s *State) unspill(taskID string, n int) {
	if n <= 0 {
		return
	}
	if s.spilled[taskID] <= n {
		s.spilledN -= s.spilled[taskID]
		delete(s.spilled, taskID)
		return
	}
	s.spilled[taskID] -= n
	s.spilledN -= n
}

// landSpilled applies the completion d, at index, of an action of t not in
// the table: one of its calls past the window. It reports false when t has
// none.
func (s *State) landSpilled(t *Task, d *event.ActionCompleted, index uint64) bool {
	if s.spilled[t.ID] == 0 {
		return false
	}
	s.unspill(t.ID, 1)
	s.noteCompleted(t, d.Tool, d.Operation)
	s.recent.add(d.ActionID, t.ID, index)
	return true
}

// rebuildQueue queues the table's calls, after a snapshot is decoded.
func (s *State) rebuildQueue() {
	s.queue = spillQueue{}
	s.actions.ids.each(func(k [16]byte, index uint64, _ uint32) {
		s.queue.q = append(s.queue.q, spillEntry{index: index, key: k})
	})
	slices.SortFunc(s.queue.q, func(a, b spillEntry) int { return cmp.Compare(a.index, b.index) })
}

// actionEvents reads what the ledger holds of action id: its
// action.authorized (nil when none) and whether a completion of it
// follows, in the task that authorized it. fresh asks the finder to
// answer as of the ledger's head, or fail.
func (s *Service) actionEvents(ctx context.Context, id string, fresh bool) (*authorizedCall, bool, error) {
	idx, err := s.cfg.FindAction(ctx, id, fresh)
	if err != nil {
		return nil, false, fmt.Errorf("%w: looking up action %s: %v", ledger.ErrUnavailable, id, err)
	}
	var auth *authorizedCall
	completed := false
	for _, i := range idx {
		e, err := entryAt(ctx, s.cfg.Store, i)
		if err != nil {
			return nil, false, fmt.Errorf("%w: reading event %d: %v", ledger.ErrUnavailable, i, err)
		}
		switch d, _ := event.Read(e.Event); d := d.(type) {
		case event.ActionDecided:
			if e.Event.Type == ledger.TypeActionAuthorized && d.ActionID == id && auth == nil {
				auth = &authorizedCall{index: i, taskID: e.Event.TaskID, jti: e.Event.JTI,
					decided: d, decisionID: e.Event.DecisionID}
			}
		case event.ActionCompleted:
			if d.ActionID == id && auth != nil && e.Event.TaskID == auth.taskID {
				completed = true
			}
		}
	}
	return auth, completed, nil
}

// authorizedCall is an action.authorized read back from the ledger.
type authorizedCall struct {
	index                   uint64
	taskID, jti, decisionID string
	decided                 event.ActionDecided
}

// spilledFlight finds action id among the calls past the window, for a
// result: the flight and details its result needs, with the result's
// reservation (key) taken, which the caller releases. A refusal says why
// not: completed already, or no such call in flight.
func (s *Service) spilledFlight(ctx context.Context, cred VerifiedCredential, id, key string) (flight, detail, error) {
	s.smu.Lock()
	if s.st.spilledN == 0 || s.cfg.FindAction == nil {
		s.smu.Unlock()
		return flight{}, detail{}, s.lookupDone(ctx, cred, id) // it checks the ring
	}
	if taskID, ok := s.st.recent.task(id); ok {
		s.smu.Unlock()
		return flight{}, detail{}, doneRefusal(cred, id, taskID)
	}
	if s.reserved[key] {
		s.smu.Unlock()
		return flight{}, detail{}, newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", id)
	}
	s.reserved[key] = true
	s.smu.Unlock()
	f, dt, err := s.openSpilled(ctx, cred, id)
	if err != nil {
		s.release(key)
	}
	return f, dt, err
}

// openSpilled looks action id up in the store and returns it when it is
// a call past the window still in flight; the caller holds its
// reservation, so no other result of this server is recorded meanwhile.
func (s *Service) openSpilled(ctx context.Context, cred VerifiedCredential, id string) (flight, detail, error) {
	auth, completed, err := s.actionEvents(ctx, id, true)
	if err != nil {
		return flight{}, detail{}, err
	}
	if auth == nil {
		return flight{}, detail{}, notFound("no action %s", id)
	}
	if completed {
		return flight{}, detail{}, doneRefusal(cred, id, auth.taskID)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if taskID, ok := s.st.recent.task(id); ok {
		return flight{}, detail{}, doneRefusal(cred, id, taskID)
	}
	if !s.st.outOfWindow(auth.index) || s.st.spilled[auth.taskID] == 0 {
		// Within the window yet not in the table: completed, or its
		// task's calls were forgotten (forget.go).
		return flight{}, detail{}, notFound("no action %s", id)
	}
	d := &auth.decided
	k := &actionKind{taskID: auth.taskID, jti: auth.jti, tool: d.Tool, operation: d.Operation}
	return flight{kind: k, index: auth.index}, actionDetailOf(auth.decisionID, d), nil
}
