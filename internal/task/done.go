package task

import (
	"context"
	"strconv"
	"strings"
)

// Completed actions. State keeps an action only while it is in flight:
// once its result is recorded nothing more can happen to it, so it leaves
// the state, and a task's memory does not grow with the actions it has
// made. The latest completed ones stay in a ring of fixed size, so that a
// result reported twice in a row is refused without reading the store;
// one reported again later is looked up in the ledger (lookupDone).

// recentKept is how many completed actions the ring holds (a variable
// for tests).
var recentKept = 4096

// recentDone holds the latest completed actions, by ID, with their tasks:
// the recentKept of highest ledger index among those applied. Events are
// applied in ledger order on replicas and at replay, while a lone server
// applies concurrent commits as they return; keeping the highest indexes
// (a heap, its least at the root) rather than the latest applied makes
// the set the same either way, so a snapshot of the state (snapshot.go)
// equals a replay. A result for an action out of it is refused either
// way, the ledger saying which refusal (lookupDone). An action.authorized
// reusing the ID of a completed action still held is skipped as
// incoherent; one reusing an older ID is not caught by the state (writ
// never writes either: IDs are 128 random bits).
type recentDone struct {
	heap  []recentEntry
	tasks map[string]string
}

type recentEntry struct {
	id    string
	index uint64 // of the action.completed
}

// add notes action id of task taskID as completed at ledger index index,
// dropping the one of least index when full.
func (r *recentDone) add(id, taskID string, index uint64) {
	if r.tasks == nil {
		r.tasks = make(map[string]string, recentKept)
		r.heap = make([]recentEntry, 0, recentKept)
	}
	e := recentEntry{id: id, index: index}
	if len(r.heap) < recentKept {
		r.heap = append(r.heap, e)
		for i := len(r.heap) - 1; i > 0; {
			p := (i - 1) / 2
			if r.heap[p].index <= r.heap[i].index {
				break
			}
			r.heap[p], r.heap[i] = r.heap[i], r.heap[p]
			i = p
		}
		r.tasks[id] = taskID
		return
	}
	if len(r.heap) == 0 || index < r.heap[0].index {
		return // older than every one held
	}
	delete(r.tasks, r.heap[0].id)
	r.heap[0] = e
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(r.heap) && r.heap[l].index < r.heap[m].index {
			m = l
		}
		if l+1 < len(r.heap) && r.heap[l+1].index < r.heap[m].index {
			m = l + 1
		}
		if m == i {
			break
		}
		r.heap[m], r.heap[i] = r.heap[i], r.heap[m]
		i = m
	}
	r.tasks[id] = taskID
}

// task returns the task of a recently completed action.
func (r *recentDone) task(id string) (string, bool) {
	t, ok := r.tasks[id]
	return t, ok
}

// done lets completed action id, in flight as f, go: out of the actions in
// flight, into the ring.
func (s *State) done(id string, f flight, index uint64) {
	s.land(id, f)
	s.recent.add(id, f.kind.taskID, index)
}

// InFlight returns how many actions the state holds: those authorized
// whose result is not recorded yet (and not forgotten with their task).
func (s *State) InFlight() int { return s.actions.len() + s.spilledN }

// ActionFinder returns the ledger indexes of the events that name an
// action (its action.authorized and action.completed), ascending; the
// query index is one. The indexes are only a hint: the events are read
// from the ledger and checked. With fresh, the answer must cover every
// event the store holds when it is asked, or be an error; without, it
// may leave out the latest.
type ActionFinder func(ctx context.Context, actionID string, fresh bool) ([]uint64, error)

// lookupDone answers for an action the state does not hold: the refusal a
// result for it gets. An action completed earlier is already_recorded (or
// other_task, when it is another task's); one never authorized, or
// authorized under a task whose actions were forgotten (forget.go) and
// never completed, is not found. Without a finder every such action is not
// found, which refuses as surely.
func (s *Service) lookupDone(ctx context.Context, cred VerifiedCredential, actionID string) error {
	if taskID, ok := s.recentTask(actionID); ok {
		return doneRefusal(cred, actionID, taskID)
	}
	if s.cfg.FindAction == nil {
		return notFound("no action %s", actionID)
	}
	auth, completed, err := s.actionEvents(ctx, actionID, false) // spill.go
	if err != nil {
		return err
	}
	if auth == nil || !completed {
		return notFound("no action %s", actionID)
	}
	return doneRefusal(cred, actionID, auth.taskID)
}

// recentTask returns the task of a recently completed action.
func (s *Service) recentTask(actionID string) (string, bool) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.recent.task(actionID)
}

// doneRefusal refuses a result for action actionID of task taskID, whose
// result is recorded.
func doneRefusal(cred VerifiedCredential, actionID, taskID string) error {
	if taskID != cred.TaskID {
		return newErr(ErrForbidden, "other_task", "action %s belongs to another task", actionID)
	}
	return newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", actionID)
}

// maxSharedPaths bounds the distinct redact path lists sharedPaths keeps.
const maxSharedPaths = 256

// sharedPaths returns paths, or an equal list already held: the actions
// of a policy carry the same few lists, which are only read, so an action
// in flight need not hold a copy of its own.
func (s *State) sharedPaths(paths []string) []string {
	if len(paths) == 0 {
		return paths
	}
	var b strings.Builder
	for _, p := range paths {
		// Length-prefixed, so no two different lists share a key.
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	key := b.String()
	if p, ok := s.paths[key]; ok {
		return p
	}
	if len(s.paths) < maxSharedPaths {
		s.paths[key] = paths
	}
	return paths
}
