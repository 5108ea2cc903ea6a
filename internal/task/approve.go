package task

import (
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// DecideTask records approver's decision on a task's approval request. See
// DecideApproval.
func (s *Service) DecideTask(ctx context.Context, approver identity.Principal, taskID string, d api.Decide) (api.Decided, error) {
	// The task may have been opened on another replica a moment ago.
	s.followForRead()
	s.smu.Lock()
	t := s.st.tasks[taskID]
	var id string
	if t != nil {
		id = t.ApprovalID
	}
	s.smu.Unlock()
	if t == nil {
		return api.Decided{}, notFound("no task %s", taskID)
	}
	if id == "" {
		return api.Decided{}, newErr(ErrConflict, "task_not_pending", "task %s is %s and has no approval request", taskID, t.State)
	}
	return s.DecideApproval(ctx, approver, id, d)
}

// DecideApproval records approver's decision on an approval request (a
// task's or a step-up). The requester of the task cannot decide (ErrForbidden,
// code self_approval, recorded as auth.rejected); each approver decides once;
// an expired request cannot be decided (ErrConflict, approval_expired). When
// the distinct approvals reach the number required, a task approval
// activates the task in the same transaction; one deny denies the task.
func (s *Service) DecideApproval(ctx context.Context, approver identity.Principal, approvalID string, d api.Decide) (api.Decided, error) {
	if d.Decision != "approve" && d.Decision != "deny" {
		return api.Decided{}, invalid("decision must be \"approve\" or \"deny\"")
	}
	if len(d.Reason) > MaxReasonBytes || !utf8.ValidString(d.Reason) {
		return api.Decided{}, invalid("reason must be valid UTF-8 of at most %d bytes", MaxReasonBytes)
	}
	if err := checkText("reason", d.Reason); err != nil {
		return api.Decided{}, err
	}
	if approver.ID == "" {
		return api.Decided{}, newErr(ErrForbidden, "forbidden", "no approver identity")
	}
	if err := s.mu.Lock(ctx); err != nil {
		return api.Decided{}, err
	}
	defer s.mu.Unlock()
	now := s.now()

	s.smu.Lock()
	a := s.st.approvals[approvalID]
	var t *Task
	if a != nil {
		t = s.st.tasks[a.TaskID]
	}
	var refused *refusal.Error
	switch {
	case a == nil:
		refused = notFound("no approval %s", approvalID)
	case t.Requester == approver.ID:
		refused = newErr(ErrForbidden, ReasonSelfApproval, "the requester of task %s cannot approve it", t.ID)
	case a.Status != ApprovalPending:
		refused = newErr(ErrConflict, "approval_not_pending", "approval %s is already %s", a.ID, a.Status)
	case a.Kind == KindTask && t.State != StatePendingApproval:
		refused = newErr(ErrConflict, "task_not_pending", "task %s is %s", t.ID, t.State)
	case a.Kind == KindStepUp && t.State != StateActive:
		refused = newErr(ErrConflict, "task_not_active", "task %s is %s", t.ID, t.State)
	case a.Kind == KindStepUp && a.ArgsMAC == "":
		// Bound by an earlier version to tool and plain digest only: no
		// call can consume it now, and deciding it would copy the digest.
		refused = newErr(ErrConflict, "approval_outdated", "step-up %s predates binding to the whole call; the agent's retry asks again", a.ID)
	case now.After(a.ExpiresAt):
		refused = newErr(ErrConflict, ReasonApprovalTTL, "approval %s expired at %s", a.ID, a.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"))
	case slices.ContainsFunc(a.Decisions, func(x Decision) bool { return x.Approver == approver.ID }):
		refused = newErr(ErrConflict, "already_decided", "%s has already decided approval %s", approver.ID, a.ID)
	}
	// A child task is activated only while its parents are, and never
	// past its parent's expiry.
	var parentExpiry time.Time
	if refused == nil && a.Kind == KindTask && t.Parent != "" && d.Decision == "approve" {
		if anc := s.st.endedAncestor(t, now); anc != nil {
			refused = newErr(ErrConflict, "parent_not_active", "task %s's parent chain has ended (task %s is %s)", t.ID, anc.ID, stateAt(anc, now))
		} else {
			parentExpiry = s.st.tasks[t.Parent].ExpiresAt
		}
	}
	var snap Approval
	var task Task
	if refused == nil || refused.Code == ReasonSelfApproval {
		snap, task = *a, *t
	}
	s.smu.Unlock()

	if refused != nil {
		if refused.Code == ReasonSelfApproval {
			ev := ledger.Event{Type: ledger.TypeAuthRejected, Time: now, TaskID: task.ID, Principal: approver.ID,
				Agent: task.Agent, Data: mustJSON(event.AuthRejected{Reason: ReasonSelfApproval, ApprovalID: snap.ID,
					Detail: "the requester of a task cannot approve it"})}
			if err := s.rejection(ctx, ReasonSelfApproval, func(ctx context.Context) error {
				_, err := s.commit(ctx, []ledger.Event{ev}, stateOnly)
				return err
			}); err != nil {
				return api.Decided{}, err
			}
		}
		return api.Decided{}, refused
	}

	env := ledger.Event{Time: now, TaskID: task.ID, Principal: task.Requester, Agent: task.Agent,
		DecisionID: task.DecisionID, PolicyVersion: snap.PolicyVersion}
	bind := event.ApprovalDecided{ApprovalID: snap.ID, Kind: snap.Kind, Approver: approver.ID, Reason: d.Reason,
		ExpiresAt: snap.ExpiresAt, Binding: event.Binding{ScopeHash: snap.ScopeHash, Tool: snap.Tool, Operation: snap.Operation,
			Resource: snap.Resource, DataClass: snap.DataClass, ArgsMAC: snap.ArgsMAC}}
	ev := env
	ev.Data = mustJSON(bind)
	events := []ledger.Event{ev}
	state := task.State
	if d.Decision == "deny" {
		events[0].Type = ledger.TypeApprovalDenied
		if snap.Kind == KindTask {
			denied := env
			denied.Type = ledger.TypeTaskDenied
			denied.Data = mustJSON(event.TaskDenied{Reasons: []string{"denied by approver " + approver.ID}, ApprovalID: snap.ID})
			events = append(events, denied)
			state = StateDenied
		}
	} else {
		events[0].Type = ledger.TypeApprovalGranted
		if snap.Kind == KindTask && snap.Granted()+1 >= snap.Required {
			events = append(events, activatedEvent(env, capToParent(task.TTL, now, parentExpiry), now, snap.ID))
			state = StateActive
		}
	}
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return api.Decided{}, err
	}
	return api.Decided{TaskID: task.ID, State: string(state), ApprovalID: snap.ID}, nil
}
