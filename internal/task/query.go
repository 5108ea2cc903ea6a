package task

import (
	"slices"
	"time"

	"github.com/writhq/writ/api"
)

// Get returns a copy of a task, or ErrNotFound.
func (s *Service) Get(taskID string) (Task, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil {
		return Task{}, notFound("no task %s", taskID)
	}
	return s.st.clone(t), nil
}

// ScopeTools returns the tool patterns of a task's scope, or ErrNotFound:
// what an enforcement point checks on every call, without copying the rest
// of the task, whose list of events grows with every call.
func (s *Service) ScopeTools(taskID string) ([]string, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil {
		return nil, notFound("no task %s", taskID)
	}
	return slices.Clone(t.Scope.Tools), nil
}

// View returns a task as the API shows it, or ErrNotFound.
func (s *Service) View(taskID string) (api.Task, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	t := s.st.tasks[taskID]
	if t == nil {
		return api.Task{}, notFound("no task %s", taskID)
	}
	return s.st.view(t), nil
}

// List returns the tasks in request order, only those in state when it is
// not empty (ErrInvalid for an unknown state).
func (s *Service) List(state string) ([]api.Task, error) {
	if err := checkListState(state); err != nil {
		return nil, err
	}
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	out := []api.Task{}
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		if state == "" || string(t.State) == state {
			out = append(out, s.st.view(t))
		}
	}
	return out, nil
}

// checkListState refuses a state filter that names no state.
func checkListState(state string) error {
	switch Status(state) {
	case "", StatePendingApproval, StateActive, StateDenied, StateCompleted, StateExpired, StateRevoked:
		return nil
	}
	return invalid("unknown state %q", state)
}

// pendingView is what an approver needs to decide on approval a of task t.
func pendingView(a *Approval, t *Task) api.PendingApproval {
	return api.PendingApproval{
		Approval: a.view(), Requester: t.Requester, Agent: t.Agent, Intent: t.Intent,
		Scope: api.Scope(t.Scope), Reasons: a.Reasons, ApprovalsRequired: a.Required, ApprovalsGiven: a.Granted(),
	}
}

// ListPendingApprovals returns the approval requests an approver can still
// decide (pending, unexpired, task in the right state), oldest first, with
// what the approver needs to judge them. for names the caller: requests of
// tasks they requested, or that they already decided, are left out.
func (s *Service) ListPendingApprovals(forID string) []api.PendingApproval {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	out := []api.PendingApproval{}
	for _, a := range s.st.approvals {
		if t := s.st.tasks[a.TaskID]; decidable(a, t, forID, now) {
			out = append(out, pendingView(a, t))
		}
	}
	slices.SortFunc(out, func(x, y api.PendingApproval) int {
		return x.ExpiresAt.Compare(y.ExpiresAt)
	})
	return out
}

func (a *Approval) view() api.Approval {
	return api.Approval{ApprovalID: a.ID, Kind: a.Kind, TaskID: a.TaskID, ScopeHash: a.ScopeHash,
		PolicyVersion: a.PolicyVersion, ExpiresAt: a.ExpiresAt, Tool: a.Tool, Operation: a.Operation,
		Resource: a.Resource, DataClass: a.DataClass, Arguments: a.Arguments, ArgsMAC: a.ArgsMAC}
}

func (st *State) view(t *Task) api.Task {
	v := api.Task{
		TaskID: t.ID, State: string(t.State), Requester: t.Requester, Agent: t.Agent, Intent: t.Intent,
		Scope: api.Scope(t.Scope), ScopeHash: t.ScopeHash, TTL: t.TTL.String(), Parent: t.Parent,
		Children: slices.Clone(t.Children), DecisionID: t.DecisionID, PolicyVersion: t.PolicyVersion,
		Reasons: t.Reasons, ApprovalsRequired: t.ApprovalsRequired, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LedgerIndex: t.RequestedIndex, Hold: st.holdView(t),
	}
	if !t.EndedAt.IsZero() {
		e := t.EndedAt
		v.EndedAt = &e
	}
	if a := st.approvals[t.ApprovalID]; a != nil {
		for _, d := range a.Decisions {
			x := a.view()
			x.Approver, x.Decision, x.Reason = d.Approver, d.Decision, d.Reason
			v.Approvals = append(v.Approvals, x)
		}
	}
	return v
}

func (st *State) clone(t *Task) Task {
	c := *t
	c.Children = slices.Clone(t.Children)
	c.Events = st.events[t.ID].all()
	c.Credentials = slices.Clone(t.Credentials)
	c.Reasons = slices.Clone(t.Reasons)
	if t.Hold != nil {
		h := *t.Hold
		c.Hold = &h
	}
	return c
}

// Approval returns a copy of an approval request, or ErrNotFound.
func (s *Service) Approval(id string) (Approval, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	a := s.st.approvals[id]
	if a == nil {
		return Approval{}, notFound("no approval %s", id)
	}
	c := *a
	c.Decisions = slices.Clone(a.Decisions)
	return c, nil
}

// Credential returns a copy of a recorded credential, or ErrNotFound.
func (s *Service) Credential(jti string) (Credential, error) {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	c := s.st.creds[jti]
	if c == nil {
		return Credential{}, notFound("no credential")
	}
	return *c, nil
}

// Now returns the service clock's time; the HTTP layer uses it for tokens.
func (s *Service) Now() time.Time { return s.now() }
