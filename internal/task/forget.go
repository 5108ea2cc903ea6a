package task

import "time"

// ForgetGrace is how long after the last credential of an ended task has
// expired its actions are still kept: room for clocks that differ between
// replicas, and for a gateway call that began before the task ended.
const ForgetGrace = 5 * time.Minute

// forgetActions drops the actions in flight of ended tasks once no token can report
// their results any more, and returns how many it dropped. A result needs a
// token of the task: once the task has ended its credentials are revoked,
// and the credential that authorized an action, the only revoked one still
// allowed to report its result, stops verifying at its expiry. Without
// this, state would grow with every action ever authorized. Whatever is
// dropped is still in the ledger (and the trace, which reads it); a result
// reported for it later is refused as for an unknown action.
func (s *State) forgetActions(now time.Time) int {
	var gone map[string]bool
	kept := s.endedTasks[:0]
	for _, et := range s.endedTasks {
		if now.Before(et.until) {
			kept = append(kept, et)
			continue
		}
		if s.inFlight(et.id) > 0 {
			if gone == nil {
				gone = map[string]bool{}
			}
			gone[et.id] = true
		}
		s.unspill(et.id, s.spilled[et.id])
		delete(s.flights, et.id)
		s.forgetHistory(et.id)
	}
	clear(s.endedTasks[len(kept):])
	s.endedTasks = kept
	s.forgetAgents(now)
	if gone == nil {
		return 0
	}
	// One pass over the actions in flight for every task forgotten at
	// this sweep: the state keeps no list of a task's actions, which
	// would cost as much again as the actions themselves.
	return s.actions.dropTasks(gone)
}

// endedTask is an ended task whose actions are still kept, and when they
// may go.
type endedTask struct {
	id    string
	until time.Time
}

// ended queues t, which has just ended, for forgetActions. An ended task
// gets no more credentials or actions, so when its actions may go is
// known now: ForgetGrace after the latest expiry of the credentials that
// authorized them. Its completed actions have left the state already
// (done.go): no result can come for them.
func (s *State) ended(t *Task) {
	tf := s.flights[t.ID]
	spilled := s.spilled[t.ID] > 0
	if tf == nil && !spilled {
		// No result can come: its history may go now.
		s.forgetHistory(t.ID)
		return
	}
	// Its results may still come, and count; its window no decision reads.
	if h := s.history[t.ID]; h != nil {
		h.win = nil
	}
	var last time.Time
	expires := func(jti string) {
		if c := s.creds[jti]; c != nil && c.ExpiresAt.After(last) {
			last = c.ExpiresAt
		}
	}
	if spilled {
		// The credentials of calls past the window (spill.go) are not
		// held: every one of the task's may have authorized one, and
		// those of the calls held are among them.
		for _, jti := range t.Credentials {
			expires(jti)
		}
	} else {
		tf.each(func(k *actionKind) { expires(k.jti) })
	}
	s.endedTasks = append(s.endedTasks, endedTask{id: t.ID, until: last.Add(ForgetGrace)})
}
