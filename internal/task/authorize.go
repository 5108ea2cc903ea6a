package task

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/redact"
)

// Request is the context of an authorization that is not in its body.
type Request struct {
	// Gateway is the enforcement point: "api", "mcp" or "proxy".
	Gateway string
	Source  string
	TraceID string
}

// Redacted replaces every redacted value.
const Redacted = redact.Replacement

// Authorize decides one tool call under cred's task and records the
// decision durably before answering. The task must be active and unexpired
// and cred a live credential of it (ErrForbidden otherwise, recorded as
// auth.rejected). Arguments must be a JSON object whose numbers survive
// canonicalization exactly (ErrInvalid, code inexact_number, otherwise), so
// that what is recorded, shown to an approver and matched is what the
// caller sent. Policy decides at point action; allow commits
// action.authorized, deny action.denied, and require_approval either
// consumes, once, a granted step-up bound to exactly this call (stepUpCall:
// task, tool, operation, resource, data class, arguments, policy version,
// unexpired) or commits action.denied and a step-up approval.requested. Any
// ledger failure is returned as an error: the caller denies. The resource is
// put in normal form first (package resource), and that form is what policy
// sees, the ledger records and a step-up binds; one that has none is refused
// (ErrInvalid).
func (s *Service) Authorize(ctx context.Context, cred VerifiedCredential, req api.Authorize, rc Request) (api.Authorized, error) {
	if err := checkCallText(req); err != nil {
		return api.Authorized{}, err
	}
	args, argsMap, canonical, err := parseArguments(req)
	if err != nil {
		return api.Authorized{}, err
	}
	if req.Resource, err = normalizeResource(req.Resource); err != nil {
		return api.Authorized{}, err
	}
	argsMAC := s.mac(macArguments, cred.TaskID, canonical)
	out, stepUp, err := s.authorizeShared(ctx, cred, req, rc, args, argsMap, argsMAC)
	if err != nil || stepUp == nil {
		return out, err
	}
	return s.requestStepUp(ctx, cred, stepUp)
}

// pendingStepUp is a require_approval answer waiting for the exclusive lock.
type pendingStepUp struct {
	events []ledger.Event // action.denied, then approval.requested
	out    api.Authorized
	call   stepUpCall
}

// CodeInexactNumber refuses arguments holding a number that canonical form
// (a double) would change, such as 12345678901234567891.
const CodeInexactNumber = "inexact_number"

// parseArguments checks req's fields and returns its arguments, decoded,
// and in canonical form (JSON null when absent).
func parseArguments(req api.Authorize) (json.RawMessage, map[string]any, []byte, error) {
	if strings.TrimSpace(req.Tool) == "" {
		return nil, nil, nil, invalid("tool is required")
	}
	if len(req.Tool) > MaxPatternBytes || len(req.Resource) > 4096 || len(req.Operation) > MaxPatternBytes {
		return nil, nil, nil, invalid("tool, operation or resource is too long")
	}
	if req.DataClass != "" && policy.DataClassLevel(req.DataClass) < 0 {
		return nil, nil, nil, invalid("data_class %q: want public, internal, confidential or restricted", req.DataClass)
	}
	raw := bytes.TrimSpace(req.Arguments)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil, []byte("null"), nil
	}
	// The arguments go on (to the upstream) as sent, but are recorded,
	// shown and matched in canonical form: a number that form would change
	// could be approved as one value and sent as another.
	var m map[string]any
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		if raw[0] == '{' && json.Valid(raw) {
			if path, found := jcs.InexactNumber(raw); found { // beyond a double's range
				return nil, nil, nil, inexactNumber(path)
			}
		}
		return nil, nil, nil, invalid("arguments must be a JSON object")
	}
	if path, found := jcs.InexactNumber(raw); found {
		return nil, nil, nil, inexactNumber(path)
	}
	c, err := jcs.Canonicalize(raw)
	if err != nil {
		return nil, nil, nil, invalid("arguments: %v", err)
	}
	return raw, m, c, nil
}

func inexactNumber(path string) *Error {
	return newErr(ErrInvalid, CodeInexactNumber, "arguments%s: the number is not exactly a double "+
		"(I-JSON, RFC 7493 §2.2: integers within ±(2^53−1), no more digits than a double keeps); send it as a string", path)
}

func (s *Service) authorizeShared(ctx context.Context, cred VerifiedCredential, req api.Authorize, rc Request,
	args json.RawMessage, argsMap map[string]any, argsMAC string) (api.Authorized, *pendingStepUp, error) {
	if err := s.mu.RLock(ctx); err != nil {
		return api.Authorized{}, nil, err
	}
	defer s.mu.RUnlock()
	now := s.now()

	s.smu.Lock()
	t, refusal := s.usable(cred, now)
	var task Task
	var chain []policy.ParentTask
	if refusal == nil {
		task = *t
		for p := s.st.tasks[t.Parent]; p != nil; p = s.st.tasks[p.Parent] {
			chain = append(chain, policy.ParentTask{ID: p.ID, Agent: p.Agent, Scope: p.Scope.policy()})
		}
	}
	s.smu.Unlock()
	if refusal != nil {
		s.reject(ctx, cred, refusal, now)
		return api.Authorized{}, nil, refusal
	}

	in := &policy.Input{
		Principal: policy.Principal{ID: task.Requester},
		Agent:     policy.Agent{ID: task.Agent},
		Task:      policy.Task{ID: task.ID, Scope: task.Scope.policy(), State: string(task.State), ParentChain: chain},
		Action: &policy.Action{Tool: req.Tool, Operation: req.Operation, Resource: req.Resource,
			Arguments: argsMap, DataClass: req.DataClass},
		Credential: &policy.Credential{JTI: cred.JTI, ExpiresAt: cred.Expiry, ActChain: cred.ActChain, Binding: cred.Binding},
		Request:    policy.Request{Time: now, Environment: s.cfg.Environment, Gateway: rc.Gateway, Source: rc.Source, TraceID: rc.TraceID},
	}
	dec := s.cfg.Policy.Evaluate(ctx, policy.PointAction, in)

	// Redact before anything is stored: the body and the recorded input.
	redArgs, redPaths, err := s.cfg.Redactor.Redact("arguments", args, dec.Obligations.Redact)
	if err != nil {
		return api.Authorized{}, nil, fmt.Errorf("redacting the arguments: %w", err)
	}
	var redMap map[string]any
	if redArgs != nil {
		json.Unmarshal(redArgs, &redMap)
	}
	recIn := *in
	recAction := *in.Action
	recAction.Arguments = redMap
	recIn.Action = &recAction
	var inputBody []byte
	if doc, err := policy.Document(policy.PointAction, &recIn); err == nil {
		inputBody, _ = json.Marshal(doc)
	}

	ev := ledger.Event{Time: now, TaskID: task.ID, Principal: task.Requester, Agent: task.Agent,
		DecisionID: dec.ID, PolicyVersion: dec.PolicyVersion, JTI: cred.JTI, TraceID: rc.TraceID,
		Bodies: map[string][]byte{"input": inputBody}}
	if redArgs != nil {
		ev.Bodies["arguments"] = redArgs
	}
	data := actionData{ActionID: newID("act"), Tool: req.Tool, Operation: req.Operation, Resource: req.Resource,
		DataClass: req.DataClass, ArgsMAC: argsMAC, Effect: string(dec.Effect), Reasons: dec.Reasons,
		Obligations: dec.Obligations, PolicyIDs: nonNil(dec.PolicyIDs), Redacted: redPaths}
	out := api.Authorized{DecisionID: dec.ID, Reasons: dec.Reasons}

	// A policy may demand a sender-constrained credential; an unbound one is
	// then refused, whatever the policy's effect otherwise allowed.
	if dec.Effect != policy.Deny && dec.Obligations.RequireBinding && !bound(cred.Binding) {
		data.ActionID, data.Refused = "", RefusedBindingRequired
		ev.Type = ledger.TypeActionDenied
		ev.Data = mustJSON(data)
		if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
			return api.Authorized{}, nil, err
		}
		out.Reasons = []string{ReasonBindingRequired}
		return out, nil, nil
	}

	switch dec.Effect {
	case policy.Allow:
	case policy.RequireApproval:
		call := stepUpCall{Tool: req.Tool, Operation: req.Operation, Resource: req.Resource, DataClass: req.DataClass,
			ArgsMAC: argsMAC, PolicyVersion: dec.PolicyVersion}
		stepID := s.reserveStepUp(task.ID, call, now)
		if stepID == "" {
			data.ActionID = ""
			ev.Type = ledger.TypeActionDenied
			ev.Data = mustJSON(data)
			ap := ev
			ap.Type, ap.JTI, ap.TraceID = ledger.TypeApprovalRequested, "", rc.TraceID
			ap.Bodies = nil
			if redArgs != nil {
				ap.Bodies = map[string][]byte{"arguments": redArgs}
			}
			ap.Data = mustJSON(approvalRequestedData{ApprovalID: newID("apr"), Kind: KindStepUp,
				Required: max(dec.Obligations.Approvals, 1), ExpiresAt: now.Add(s.cfg.ApprovalTTL), Reasons: dec.Reasons,
				Tool: req.Tool, Operation: req.Operation, Resource: req.Resource, DataClass: req.DataClass, ArgsMAC: argsMAC})
			return api.Authorized{}, &pendingStepUp{events: []ledger.Event{ev, ap}, out: out, call: call}, nil
		}
		defer s.release(stepID)
		data.StepUp = stepID
	default:
		data.ActionID = ""
		ev.Type = ledger.TypeActionDenied
		ev.Data = mustJSON(data)
		if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
			return api.Authorized{}, nil, err
		}
		return out, nil, nil
	}
	ev.Type = ledger.TypeActionAuthorized
	ev.Data = mustJSON(data)
	if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
		return api.Authorized{}, nil, err
	}
	rec := dec.Obligations.RecordOutput == nil || *dec.Obligations.RecordOutput
	out.Allow, out.ActionID, out.RecordOutput, out.Redact = true, data.ActionID, &rec, dec.Obligations.Redact
	return out, nil, nil
}

// requestStepUp commits a step-up request under the exclusive lock, after
// checking again that the task and credential are still usable. A pending,
// unexpired step-up bound to exactly the same call is reused rather than
// duplicated; any difference gets a request of its own.
func (s *Service) requestStepUp(ctx context.Context, cred VerifiedCredential, p *pendingStepUp) (api.Authorized, error) {
	if err := s.mu.Lock(ctx); err != nil {
		return api.Authorized{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	s.smu.Lock()
	_, refusal := s.usable(cred, now)
	existing := ""
	if refusal == nil {
		for _, a := range s.st.approvals {
			if a.Status == ApprovalPending && a.binds(cred.TaskID, p.call) && now.Before(a.ExpiresAt) {
				existing = a.ID
			}
		}
	}
	s.smu.Unlock()
	if refusal != nil {
		s.reject(ctx, cred, refusal, now)
		return api.Authorized{}, refusal
	}
	events := p.events
	var req approvalRequestedData
	json.Unmarshal(events[1].Data, &req)
	approvalID := req.ApprovalID
	if existing != "" {
		events, approvalID = events[:1], existing
	}
	var data actionData
	json.Unmarshal(events[0].Data, &data)
	data.ApprovalID = approvalID
	events[0].Data = mustJSON(data)
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return api.Authorized{}, err
	}
	out := p.out
	out.ApprovalRequired, out.ApprovalID = true, approvalID
	return out, nil
}

// usable checks that cred may act under its task now. The caller holds smu.
func (s *Service) usable(cred VerifiedCredential, now time.Time) (*Task, *Error) {
	t := s.st.tasks[cred.TaskID]
	c := s.st.creds[cred.JTI]
	switch {
	case t == nil:
		return nil, newErr(ErrForbidden, "unknown_task", "the credential names a task that does not exist")
	case c == nil || c.TaskID != t.ID || c.Agent != cred.Agent || t.Agent != cred.Agent:
		return nil, newErr(ErrForbidden, "unknown_credential", "the credential was not issued for this task and agent")
	case c.Revoked:
		return nil, newErr(ErrForbidden, "credential_revoked", "the credential was revoked")
	case !now.Before(cred.Expiry) || !now.Before(c.ExpiresAt):
		return nil, newErr(ErrForbidden, "credential_expired", "the credential has expired")
	case t.State != StateActive:
		return nil, newErr(ErrForbidden, "task_not_active", "task %s is %s", t.ID, t.State)
	case !now.Before(t.ExpiresAt):
		s.Kick()
		return nil, newErr(ErrForbidden, "task_expired", "task %s has expired", t.ID)
	}
	if a := s.st.endedAncestor(t, now); a != nil {
		s.Kick()
		return nil, ancestorRefusal(t, a, now)
	}
	return t, nil
}

// reject records a refused use of a credential, as Config.Rejections
// allows. The refusal stands either way; a failed record is counted and
// logged there (here, without Rejections).
func (s *Service) reject(ctx context.Context, cred VerifiedCredential, e *Error, now time.Time) {
	ev := ledger.Event{Type: ledger.TypeAuthRejected, Time: now, TaskID: cred.TaskID, Agent: cred.Agent,
		Principal: cred.Subject, JTI: cred.JTI, Data: mustJSON(rejectedData{Reason: e.Code, Detail: e.Detail})}
	err := s.rejection(ctx, e.Code, func(ctx context.Context) error {
		_, err := s.commit(ctx, []ledger.Event{ev}, stateOnly)
		return err
	})
	if err != nil && s.cfg.Rejections == nil {
		s.log.WarnContext(ctx, "recording a refused credential failed", "err", err, "reason", e.Code)
	}
}

// reserveStepUp finds a granted, unexpired, unused step-up bound to exactly
// this call and reserves it for the caller, or returns "". The reservation
// makes concurrent retries of one approved call pass once between them.
func (s *Service) reserveStepUp(taskID string, c stepUpCall, now time.Time) string {
	s.smu.Lock()
	defer s.smu.Unlock()
	for _, a := range s.st.approvals {
		if a.Status == ApprovalGranted && a.UsedBy == "" && a.binds(taskID, c) &&
			!now.After(a.ExpiresAt) && !s.reserved[a.ID] {
			s.reserved[a.ID] = true
			return a.ID
		}
	}
	return ""
}

func (s *Service) release(key string) {
	s.smu.Lock()
	delete(s.reserved, key)
	s.smu.Unlock()
}

// Refusal of a call the policy allowed, recorded in action.denied's data.
const (
	RefusedBindingRequired = "binding_required"
	// ReasonBindingRequired is the reason answered for it.
	ReasonBindingRequired = "policy requires a sender-constrained token (DPoP or mTLS) for this call"
)

// bound reports whether a credential binding is a real one.
func bound(binding string) bool { return binding == "dpop" || binding == "mtls" }
