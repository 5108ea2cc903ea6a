package task

import (
	"context"
	"fmt"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/refusal"
)

// RecordResult records what a tool call returned: action.completed with the
// status and, unless the decision's obligations said record_output=false,
// the output as a body, redacted (the defaults of package redact and the
// obligation's "output." paths), or else only the output's keyed digest
// (mac.go). The action must belong to cred's task, and cred must be
// the credential that authorized it or a live credential of that task.
func (s *Service) RecordResult(ctx context.Context, cred VerifiedCredential, actionID string, res api.ActionResult) (api.ResultRecorded, error) {
	return s.RecordResultAt(ctx, cred, actionID, res, Request{})
}

// RecordResultAt is RecordResult for a result reported by an enforcement
// point (the MCP gateway, the HTTP proxy): the event carries rc's trace.
func (s *Service) RecordResultAt(ctx context.Context, cred VerifiedCredential, actionID string, res api.ActionResult, rc Request) (api.ResultRecorded, error) {
	rec, _, err := s.recordResult(ctx, cred, actionID, res, rc, false)
	return rec, err
}

// HeldResult is what RecordHeldResult recorded.
type HeldResult struct {
	api.ResultRecorded
	// Cancelled, when not "", is why the outcome was recorded as
	// cancelled, and why the result must be withheld: the task's end
	// (ReasonTaskCompleted, ReasonTaskExpired, ReasonTaskRevoked) or
	// ReasonCredentialRevoked.
	Cancelled string
}

// RecordHeldResult is RecordResultAt for an enforcement point that still
// holds the result and has not passed it on. When, as the result is
// recorded, the action's task has ended or is past its expiry, or the
// credential that authorized the action was revoked, the outcome is
// recorded with status cancelled and that reason instead (the output is
// still what the tool returned, which the agent never gets), and the
// caller must withhold the result. The check and the record are one step
// under the lock that task ends take, on every replica: a result recorded
// as ok or error was recorded before the task ended, in ledger order.
func (s *Service) RecordHeldResult(ctx context.Context, cred VerifiedCredential, actionID string, res api.ActionResult, rc Request) (HeldResult, error) {
	rec, reason, err := s.recordResult(ctx, cred, actionID, res, rc, true)
	return HeldResult{ResultRecorded: rec, Cancelled: reason}, err
}

// Statuses of action.completed (package event).
const (
	StatusOK        = event.StatusOK
	StatusError     = event.StatusError
	StatusCancelled = event.StatusCancelled
)

func validStatus(s string) bool {
	return s == StatusOK || s == StatusError || s == StatusCancelled
}

func (s *Service) recordResult(ctx context.Context, cred VerifiedCredential, actionID string, res api.ActionResult, rc Request, held bool) (api.ResultRecorded, string, error) {
	if !validStatus(res.Status) {
		return api.ResultRecorded{}, "", invalid("status must be \"ok\", \"error\" or \"cancelled\"")
	}
	canonical := []byte("null")
	if len(res.Output) > 0 {
		c, err := jcs.Canonicalize(res.Output)
		if err != nil {
			return api.ResultRecorded{}, "", invalid("output is not valid JSON: %v", err)
		}
		canonical = c
	}
	if err := s.mu.RLock(ctx); err != nil {
		return api.ResultRecorded{}, "", err
	}
	defer s.mu.RUnlock()
	if err := s.followAction(ctx, actionID); err != nil {
		return api.ResultRecorded{}, "", err
	}
	now := s.now()
	key := "done:" + actionID
	s.smu.Lock()
	f, ok := s.st.actions.get(actionID)
	var act detail
	spilled := false
	if !ok {
		// Completed, never authorized, or a call past the window
		// (spill.go): the ledger says which. A call past the window
		// comes back reserved.
		s.smu.Unlock()
		var err error
		if f, act, err = s.spilledFlight(ctx, cred, actionID, key); err != nil {
			return api.ResultRecorded{}, "", err
		}
		spilled = true
		s.smu.Lock()
	}
	var refused *refusal.Error
	var t *Task
	switch {
	case f.kind.taskID != cred.TaskID:
		refused = newErr(ErrForbidden, "other_task", "action %s belongs to another task", actionID)
	case s.reserved[key] && !spilled:
		refused = newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", actionID)
	default:
		t = s.st.tasks[f.kind.taskID]
		c := s.st.creds[cred.JTI]
		if c == nil || c.TaskID != f.kind.taskID || c.Agent != cred.Agent || (c.Revoked && cred.JTI != f.kind.jti) {
			refused = credentialRefusal("unknown_credential", "the credential may not report results for action %s", actionID)
		}
	}
	cancelled := ""
	if refused == nil {
		s.reserved[key] = true
		if held {
			cancelled = s.st.cancelled(f.kind, now)
		}
	}
	s.smu.Unlock()
	if refused != nil {
		if spilled {
			s.release(key)
		}
		return api.ResultRecorded{}, "", refused
	}
	defer s.release(key)
	if !spilled {
		var err error
		if act, err = s.actionDetail(ctx, actionID, f); err != nil {
			return api.ResultRecorded{}, "", err
		}
	}

	ev := ledger.Event{Type: ledger.TypeActionCompleted, Time: now, TaskID: t.ID, Principal: t.Requester,
		Agent: t.Agent, DecisionID: act.decisionID, JTI: cred.JTI, TraceID: rc.TraceID}
	d := event.ActionCompleted{ActionID: actionID, Status: res.Status, OutputRecorded: act.recordOutput,
		Tool: f.kind.tool, Operation: f.kind.operation}
	if cancelled != "" {
		d.Status, d.Reason = StatusCancelled, cancelled
	}
	if !act.recordOutput {
		d.OutputMAC = s.mac(macOutput, t.ID, canonical)
	}
	if act.recordOutput && len(res.Output) > 0 {
		body, paths, err := s.cfg.Redactor.Redact("output", res.Output, act.redact)
		if err != nil {
			return api.ResultRecorded{}, "", fmt.Errorf("redacting the output: %w", err)
		}
		if body != nil {
			ev.Bodies = map[string][]byte{"output": body}
		}
		d.Redacted = paths
	}
	ev.Data = mustJSON(d)
	idx, err := s.commit(ctx, []ledger.Event{ev}, stateOnly)
	if err != nil {
		return api.ResultRecorded{}, "", err
	}
	return api.ResultRecorded{ActionID: actionID, LedgerIndex: idx}, cancelled, nil
}

// cancelled says why a call of an action of kind a, still in flight at
// now, may no longer pass its result on: its task or one of its ancestors
// has ended or is past its expiry, or the credential that authorized it
// was revoked ("" when none holds).
func (st *State) cancelled(a *actionKind, now time.Time) string {
	t := st.tasks[a.taskID]
	switch {
	case t == nil:
		return ReasonTaskRevoked
	case t.State == StateCompleted:
		return ReasonTaskCompleted
	case t.State == StateExpired, t.State == StateActive && !now.Before(t.ExpiresAt):
		return ReasonTaskExpired
	case t.State != StateActive:
		return ReasonTaskRevoked
	}
	if p := st.endedAncestor(t, now); p != nil {
		if p.State == StateActive || p.State == StateExpired {
			return ReasonTaskExpired
		}
		return ReasonTaskRevoked
	}
	if c := st.creds[a.jti]; c != nil && c.Revoked {
		return ReasonCredentialRevoked
	}
	return ""
}
