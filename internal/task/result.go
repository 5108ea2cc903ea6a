package task

import (
	"context"
	"fmt"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
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
	if res.Status != "ok" && res.Status != "error" && res.Status != "cancelled" {
		return api.ResultRecorded{}, invalid("status must be \"ok\", \"error\" or \"cancelled\"")
	}
	canonical := []byte("null")
	if len(res.Output) > 0 {
		c, err := jcs.Canonicalize(res.Output)
		if err != nil {
			return api.ResultRecorded{}, invalid("output is not valid JSON: %v", err)
		}
		canonical = c
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	key := "done:" + actionID
	s.smu.Lock()
	a := s.st.actions[actionID]
	var refusal *Error
	var t *Task
	switch {
	case a == nil:
		refusal = notFound("no action %s", actionID)
	case a.TaskID != cred.TaskID:
		refusal = newErr(ErrForbidden, "other_task", "action %s belongs to another task", actionID)
	case a.Completed || s.reserved[key]:
		refusal = newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", actionID)
	default:
		t = s.st.tasks[a.TaskID]
		c := s.st.creds[cred.JTI]
		if c == nil || c.TaskID != a.TaskID || c.Agent != cred.Agent || (c.Revoked && cred.JTI != a.JTI) {
			refusal = newErr(ErrForbidden, "unknown_credential", "the credential may not report results for action %s", actionID)
		}
	}
	var act Action
	if refusal == nil {
		s.reserved[key] = true
		act = *a
	}
	s.smu.Unlock()
	if refusal != nil {
		return api.ResultRecorded{}, refusal
	}
	defer s.release(key)

	ev := ledger.Event{Type: ledger.TypeActionCompleted, Time: now, TaskID: act.TaskID, Principal: t.Requester,
		Agent: t.Agent, DecisionID: act.DecisionID, JTI: cred.JTI, TraceID: rc.TraceID}
	d := completedData{ActionID: actionID, Status: res.Status, OutputRecorded: act.RecordOutput}
	if !act.RecordOutput {
		d.OutputMAC = s.mac(macOutput, act.TaskID, canonical)
	}
	if act.RecordOutput && len(res.Output) > 0 {
		body, paths, err := s.cfg.Redactor.Redact("output", res.Output, act.Redact)
		if err != nil {
			return api.ResultRecorded{}, fmt.Errorf("redacting the output: %w", err)
		}
		if body != nil {
			ev.Bodies = map[string][]byte{"output": body}
		}
		d.Redacted = paths
	}
	ev.Data = mustJSON(d)
	idx, err := s.commit(ctx, []ledger.Event{ev}, false)
	if err != nil {
		return api.ResultRecorded{}, err
	}
	return api.ResultRecorded{ActionID: actionID, LedgerIndex: idx}, nil
}
