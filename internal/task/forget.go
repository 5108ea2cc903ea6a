package task

import "time"

// ForgetGrace is how long after the last credential of an ended task has
// expired its actions are still kept: room for clocks that differ between
// replicas, and for a gateway call that began before the task ended.
const ForgetGrace = 5 * time.Minute

// forgetActions drops the actions of ended tasks once no token can report
// their results any more, and returns how many it dropped. A result needs a
// token of the task: once the task has ended its credentials are revoked,
// and the credential that authorized an action, the only revoked one still
// allowed to report its result, stops verifying at its expiry. Without
// this, state would grow with every action ever authorized. Whatever is
// dropped is still in the ledger (and the trace, which reads it); a result
// reported for it later is refused as for an unknown action.
func (s *State) forgetActions(now time.Time) int {
	n := 0
	kept := s.endedTasks[:0]
	for _, et := range s.endedTasks {
		if et.until.IsZero() {
			// Once the task has ended it gets no credentials and no
			// actions: the latest expiry is known from now on.
			et.until = time.Unix(0, 0)
			for _, aid := range s.taskActions[et.id] {
				if a := s.actions[aid]; a != nil {
					if c := s.creds[a.JTI]; c != nil && c.ExpiresAt.After(et.until) {
						et.until = c.ExpiresAt
					}
				}
			}
			et.until = et.until.Add(ForgetGrace)
		}
		if now.Before(et.until) {
			kept = append(kept, et)
			continue
		}
		for _, aid := range s.taskActions[et.id] {
			if _, ok := s.actions[aid]; ok {
				delete(s.actions, aid)
				n++
			}
		}
		delete(s.taskActions, et.id)
	}
	clear(s.endedTasks[len(kept):])
	s.endedTasks = kept
	return n
}

// endedTask is an ended task whose actions are still kept, and when they
// may go (zero until first computed).
type endedTask struct {
	id    string
	until time.Time
}
