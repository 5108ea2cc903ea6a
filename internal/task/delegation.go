package task

import (
	"time"

	"github.com/writhq/writ/internal/refusal"
)

// ReasonAncestorEnded is the refusal reason (auth.rejected) of a call under
// a task whose parent, or a parent of that, is no longer active.
const ReasonAncestorEnded = "ancestor_not_active"

// endedAncestor returns the nearest ancestor of t that is no longer active
// at now (ended, or past its expiry but not yet swept), or nil when every
// ancestor is live. A child acts only while its whole parent chain does.
// The caller holds smu.
func (s *State) endedAncestor(t *Task, now time.Time) *Task {
	for id := t.Parent; id != ""; {
		p := s.tasks[id]
		if p == nil {
			// Cannot happen on a coherent ledger; refuse rather than guess.
			return &Task{ID: id, State: StateRevoked}
		}
		if p.State != StateActive || !now.Before(p.ExpiresAt) {
			return p
		}
		id = p.Parent
	}
	return nil
}

// ancestorRefusal is the refusal for a task whose ancestor a has ended.
func ancestorRefusal(t, a *Task, now time.Time) *refusal.Error {
	return credentialRefusal(ReasonAncestorEnded, "task %s's ancestor task %s is %s; a child task acts only while its parents do", t.ID, a.ID, stateAt(a, now))
}

// stateAt names t's state at now: "expired" once its time is up, even
// before the sweeper records it.
func stateAt(t *Task, now time.Time) string {
	if t.State == StateActive && !now.Before(t.ExpiresAt) {
		return string(StateExpired)
	}
	return string(t.State)
}

// capToParent shortens ttl so that a child task activated at now expires
// no later than its parent (parentExpiry zero: no parent).
func capToParent(ttl time.Duration, now, parentExpiry time.Time) time.Duration {
	if !parentExpiry.IsZero() && now.Add(ttl).After(parentExpiry) {
		return max(parentExpiry.Sub(now), 0)
	}
	return ttl
}

// EndedAncestor reports the nearest ancestor of the task that is no
// longer active, for the exchange decision point.
func (s *Service) EndedAncestor(taskID string) (Task, bool) {
	s.followForRead()
	now := s.now()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil {
		return Task{}, false
	}
	if a := s.st.endedAncestor(t, now); a != nil {
		return s.st.clone(a), true
	}
	return Task{}, false
}
