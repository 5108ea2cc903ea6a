package task

import (
	"slices"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
)

// Who sees which task: one rule for the API, the console and the CLI.
// Auditors and admins see every task; anyone sees the tasks they requested;
// an approver sees the tasks with an approval request they may decide now
// or have decided. To anyone else a task does not exist: reading, tracing,
// ending or extending it answers ErrNotFound, exactly as for an unknown ID,
// so a task's existence is not confirmed to those who may not see it.

// sees reports whether p may see t. The caller holds smu.
func (st *State) sees(p identity.Principal, t *Task, now time.Time) bool {
	switch {
	case p.ID == "":
		return false
	case p.HasRole(identity.RoleAuditor), p.HasRole(identity.RoleAdmin), p.ID == t.Requester:
		return true
	case !p.HasRole(identity.RoleApprover):
		return false
	}
	for _, a := range st.approvals {
		if a.TaskID == t.ID && (decidable(a, t, p.ID, now) || decidedBy(a, p.ID)) {
			return true
		}
	}
	return false
}

// decidable reports whether approver forID may decide a now: pending,
// unexpired, the task in the state the request is for, and neither
// requested nor already decided by them.
func decidable(a *Approval, t *Task, forID string, now time.Time) bool {
	switch {
	case t == nil, a.Status != ApprovalPending, now.After(a.ExpiresAt), t.Requester == forID, decidedBy(a, forID):
		return false
	case a.Kind == KindTask:
		return t.State == StatePendingApproval
	case a.Kind == KindStepUp:
		// A step-up recorded before args_mac cannot be matched to a call.
		return t.State == StateActive && a.ArgsMAC != ""
	}
	return false
}

func decidedBy(a *Approval, id string) bool {
	return slices.ContainsFunc(a.Decisions, func(d Decision) bool { return d.Approver == id })
}

// Sees reports whether p may see task taskID (false for an unknown task).
func (s *Service) Sees(p identity.Principal, taskID string) bool {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	return t != nil && s.st.sees(p, t, s.now())
}

// GetAs is Get for p: ErrNotFound, as for an unknown task, when p may not
// see it.
func (s *Service) GetAs(p identity.Principal, taskID string) (Task, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil || !s.st.sees(p, t, s.now()) {
		return Task{}, notFound("no task %s", taskID)
	}
	return s.st.clone(t), nil
}

// ViewAs is View for p: ErrNotFound, as for an unknown task, when p may
// not see it.
func (s *Service) ViewAs(p identity.Principal, taskID string) (api.Task, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil || !s.st.sees(p, t, s.now()) {
		return api.Task{}, notFound("no task %s", taskID)
	}
	return s.st.view(t), nil
}

// ListAs is List for p: only the tasks p may see.
func (s *Service) ListAs(p identity.Principal, state string) ([]api.Task, error) {
	if err := checkListState(state); err != nil {
		return nil, err
	}
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	all := p.HasRole(identity.RoleAuditor) || p.HasRole(identity.RoleAdmin)
	// An approver's tasks, found in one pass over the approval requests.
	var approving map[string]bool
	if !all && p.HasRole(identity.RoleApprover) {
		approving = map[string]bool{}
		for _, a := range s.st.approvals {
			if t := s.st.tasks[a.TaskID]; t != nil && (decidable(a, t, p.ID, now) || decidedBy(a, p.ID)) {
				approving[a.TaskID] = true
			}
		}
	}
	out := []api.Task{}
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		if state != "" && string(t.State) != state {
			continue
		}
		if all || (p.ID != "" && p.ID == t.Requester) || approving[id] {
			out = append(out, s.st.view(t))
		}
	}
	return out, nil
}
