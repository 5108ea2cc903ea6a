package task

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/redact"
	"github.com/writhq/writ/internal/refusal"
)

// Request is the context of an authorization that is not in its body.
type Request struct {
	// Gateway is the enforcement point the request came by, one of
	// policy.Gateways: policy.GatewayAPI, GatewayMCP or GatewayProxy for
	// a call, GatewayToken for an exchange.
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
// (ErrInvalid). Policy sees the task's history as the state counts it
// (history.go); a call that would pass a limit of its task's scope, or of
// a task it was delegated from, is denied whatever policy says, recorded
// with refused "limit_reached" (limits.go), and an allowed call is held
// against those limits until its record is applied, so that concurrent
// calls pass a limit exactly.
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
	out, stepUp, err := s.authorizeShared(ctx, cred, req, rc, callArgs{raw: args, decoded: argsMap, canonical: canonical, mac: argsMAC})
	if err != nil || stepUp == nil {
		return out, err
	}
	return s.requestStepUp(ctx, cred, stepUp)
}

// pendingStepUp is a require_approval answer waiting for the exclusive
// lock: action.denied with its data, then approval.requested with its
// data, which requestStepUp completes and encodes.
type pendingStepUp struct {
	denied    ledger.Event
	data      event.ActionDecided
	requested ledger.Event
	asked     event.ApprovalRequested
	out       api.Authorized
	call      stepUpCall
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
	if raw[0] != '{' || decodeArguments(raw, &m) != nil {
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

func inexactNumber(path string) *refusal.Error {
	return newErr(ErrInvalid, CodeInexactNumber, "arguments%s: the number is not exactly a double "+
		"(I-JSON, RFC 7493 §2.2: integers within ±(2^53−1), no more digits than a double keeps); send it as a string", path)
}

// callArgs are a call's arguments: as sent (nil when it has none),
// decoded, in canonical form, and their keyed digest.
type callArgs struct {
	raw       json.RawMessage
	decoded   map[string]any
	canonical []byte
	mac       string
}

func (s *Service) authorizeShared(ctx context.Context, cred VerifiedCredential, req api.Authorize, rc Request,
	args callArgs) (api.Authorized, *pendingStepUp, error) {
	if err := s.mu.RLock(ctx); err != nil {
		return api.Authorized{}, nil, err
	}
	defer s.mu.RUnlock()
	unorder, err := s.orderCall(ctx, cred.TaskID)
	if err != nil {
		return api.Authorized{}, nil, err
	}
	defer unorder()
	now := s.now()

	s.smu.Lock()
	t, refused := s.usable(cred, now)
	var task Task
	var chain []policy.ParentTask
	var hist *policy.History
	limited := false
	if refused == nil {
		task = *t
		for p := s.st.tasks[t.Parent]; p != nil; p = s.st.tasks[p.Parent] {
			chain = append(chain, policy.ParentTask{ID: p.ID, Agent: p.Agent, Scope: p.Scope.policy()})
		}
		hist = s.st.historyOf(t, req.Tool, req.Operation, req.Resource, now)
		limited = s.st.limited(t)
	}
	s.smu.Unlock()
	if refused != nil {
		s.reject(ctx, cred, refused, now)
		return api.Authorized{}, nil, refused
	}

	in := &policy.Input{
		Principal: policy.Principal{ID: task.Requester},
		Agent:     policy.Agent{ID: task.Agent},
		Task:      policy.Task{ID: task.ID, Scope: task.Scope.policy(), State: string(task.State), ParentChain: chain},
		Action: &policy.Action{Tool: req.Tool, Operation: req.Operation, Resource: req.Resource,
			Arguments: args.decoded, DataClass: req.DataClass},
		Credential: &policy.Credential{JTI: cred.JTI, ExpiresAt: cred.Expiry, ActChain: cred.ActChain, Binding: cred.Binding},
		Request:    policy.Request{Time: now, Environment: s.cfg.Environment, Gateway: rc.Gateway, Source: rc.Source, TraceID: rc.TraceID},
		History:    hist,
	}
	dec := s.cfg.Policy.Evaluate(ctx, policy.PointAction, in)

	ev := ledger.Event{Time: now, TaskID: task.ID, Principal: task.Requester, Agent: task.Agent,
		DecisionID: dec.ID, PolicyVersion: dec.PolicyVersion, JTI: cred.JTI, TraceID: rc.TraceID}
	data := event.ActionDecided{ActionID: newID("act"), Tool: req.Tool, Operation: req.Operation, Resource: req.Resource,
		DataClass: req.DataClass, ArgsMAC: args.mac, Effect: string(dec.Effect), Reasons: dec.Reasons,
		Obligations: dec.Obligations, PolicyIDs: nonNil(dec.PolicyIDs)}
	out := api.Authorized{DecisionID: dec.ID, Reasons: dec.Reasons}

	// Redact before anything is stored: the body and the recorded input.
	rec, err := s.callRecord(args, dec, in)
	if err != nil {
		// Without its whole record the call is denied: recorded as far
		// as it can be, without the bodies that could not be built.
		s.log.WarnContext(ctx, "the record of a call could not be built; it is denied", "err", err, "task_id", task.ID, "tool", req.Tool)
		data.Refused, out.Reasons = RefusedUnrecordable, []string{ReasonUnrecordable}
		return s.commitDenied(ctx, ev, data, out)
	}
	redArgs := rec.args
	data.Redacted = rec.paths
	ev.Bodies = map[string][]byte{"input": rec.input}
	if redArgs != nil {
		ev.Bodies["arguments"] = redArgs
	}

	// A policy may demand a sender-constrained credential; an unbound one is
	// then refused, whatever the policy's effect otherwise allowed.
	if dec.Effect != policy.Deny && dec.Obligations.RequireBinding && !bound(cred.Binding) {
		data.Refused, out.Reasons = RefusedBindingRequired, []string{ReasonBindingRequired}
		return s.commitDenied(ctx, ev, data, out)
	}

	switch dec.Effect {
	case policy.Allow:
	case policy.RequireApproval:
		call := stepUpCall{Tool: req.Tool, Operation: req.Operation, Resource: req.Resource, DataClass: req.DataClass,
			ArgsMAC: args.mac, PolicyVersion: dec.PolicyVersion}
		stepID := s.reserveStepUp(task.ID, call, now)
		if stepID == "" && limited {
			// No approver is asked for a call its limits refuse anyway.
			s.smu.Lock()
			hit := s.st.limitReached(&task, req.Tool, now)
			s.smu.Unlock()
			if hit != nil {
				return s.commitLimited(ctx, ev, data, out, hit, &task)
			}
		}
		if stepID == "" {
			data.ActionID = ""
			ev.Type = ledger.TypeActionDenied
			ap := ev
			ap.Type, ap.JTI, ap.TraceID = ledger.TypeApprovalRequested, "", rc.TraceID
			ap.Bodies = nil
			if redArgs != nil {
				ap.Bodies = map[string][]byte{"arguments": redArgs}
			}
			asked := event.ApprovalRequested{ApprovalID: newID("apr"), Kind: KindStepUp,
				Required: max(dec.Obligations.Approvals, 1), ExpiresAt: now.Add(s.cfg.ApprovalTTL), Reasons: dec.Reasons,
				Binding: event.Binding{Tool: req.Tool, Operation: req.Operation, Resource: req.Resource, DataClass: req.DataClass, ArgsMAC: args.mac}}
			return api.Authorized{}, &pendingStepUp{denied: ev, data: data, requested: ap, asked: asked, out: out, call: call}, nil
		}
		defer s.release(stepID)
		data.StepUp = stepID
	default:
		return s.commitDenied(ctx, ev, data, out)
	}
	if limited {
		// Held against the limits until its record is applied, or let go.
		s.smu.Lock()
		hit := s.st.reserve(data.ActionID, &task, req.Tool, now)
		s.smu.Unlock()
		if hit != nil {
			return s.commitLimited(ctx, ev, data, out, hit, &task)
		}
		defer func() {
			s.smu.Lock()
			s.st.settle(data.ActionID)
			s.smu.Unlock()
		}()
	}
	ev.Type = ledger.TypeActionAuthorized
	ev.Data = mustJSON(data)
	if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
		return api.Authorized{}, nil, err
	}
	recordOutput := dec.Obligations.RecordOutput == nil || *dec.Obligations.RecordOutput
	out.Allow, out.ActionID, out.RecordOutput, out.Redact = true, data.ActionID, &recordOutput, dec.Obligations.Redact
	return out, nil, nil
}

// commitDenied records a call as action.denied (ev with data, without an
// action ID) and answers out, or the error that kept it from the ledger.
func (s *Service) commitDenied(ctx context.Context, ev ledger.Event, data event.ActionDecided, out api.Authorized) (api.Authorized, *pendingStepUp, error) {
	data.ActionID = ""
	ev.Type = ledger.TypeActionDenied
	ev.Data = mustJSON(data)
	if _, err := s.commit(ctx, []ledger.Event{ev}, stateOnly); err != nil {
		return api.Authorized{}, nil, err
	}
	return out, nil, nil
}

// commitLimited records a call that limit hit of its scope (or an
// ancestor's) refuses, as action.denied with refused "limit_reached",
// whatever policy answered.
func (s *Service) commitLimited(ctx context.Context, ev ledger.Event, data event.ActionDecided, out api.Authorized,
	hit *event.LimitReached, t *Task) (api.Authorized, *pendingStepUp, error) {
	reason := limitReason(hit, t)
	data.Refused, data.Limit, data.StepUp = RefusedLimit, hit, ""
	out.Reasons = []string{reason}
	return s.commitDenied(ctx, ev, data, out)
}

// callRecord is what the ledger keeps of a call beside its data: its
// arguments, redacted (nil when it has none), the paths redaction
// replaced, and the policy input document with those arguments.
type callRecord struct {
	args  []byte
	paths []string
	input []byte
}

// callRecord builds the record of a call decided by dec on in, redacting
// before anything is stored. An error means the call cannot be recorded
// as it was decided.
func (s *Service) callRecord(args callArgs, dec policy.Decision, in *policy.Input) (callRecord, error) {
	var red []byte
	var paths []string
	if args.raw != nil && s.cfg.Redactor.Clean("arguments", args.decoded, args.raw, dec.Obligations.Redact) {
		// Nothing to redact: the body is the arguments' canonical form,
		// which is what Redact would build again.
		red = args.canonical
	} else {
		var err error
		if red, paths, err = s.cfg.Redactor.Redact("arguments", args.raw, dec.Obligations.Redact); err != nil {
			return callRecord{}, fmt.Errorf("redacting the arguments: %w", err)
		}
	}
	recIn := *in
	recAction := *in.Action
	recIn.Action = &recAction
	// Nothing replaced, the redacted arguments are the canonical form of
	// those decided on, and decode to the same map: only what redaction
	// changed is decoded again.
	if len(paths) > 0 {
		var redMap map[string]any
		if err := decodeArguments(red, &redMap); err != nil {
			return callRecord{}, fmt.Errorf("reading the redacted arguments: %w", err)
		}
		recAction.Arguments = redMap
	}
	doc, err := policy.Document(policy.PointAction, &recIn)
	if err != nil {
		return callRecord{}, fmt.Errorf("the policy input document: %w", err)
	}
	input, err := policy.MarshalInput(doc)
	if err != nil {
		return callRecord{}, fmt.Errorf("encoding the policy input document: %w", err)
	}
	return callRecord{args: red, paths: paths, input: input}, nil
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
	_, refused := s.usable(cred, now)
	existing := ""
	if refused == nil {
		for _, a := range s.st.approvals {
			if a.Status == ApprovalPending && a.binds(cred.TaskID, p.call) && now.Before(a.ExpiresAt) {
				existing = a.ID
			}
		}
	}
	s.smu.Unlock()
	if refused != nil {
		s.reject(ctx, cred, refused, now)
		return api.Authorized{}, refused
	}
	approvalID := p.asked.ApprovalID
	if existing != "" {
		approvalID = existing
	}
	p.data.ApprovalID = approvalID
	p.denied.Data = mustJSON(p.data)
	events := []ledger.Event{p.denied}
	if existing == "" {
		p.requested.Data = mustJSON(p.asked)
		events = append(events, p.requested)
	}
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return api.Authorized{}, err
	}
	out := p.out
	out.ApprovalRequired, out.ApprovalID = true, approvalID
	return out, nil
}

// usable checks that cred may act under its task now; a refusal is a
// credentialRefusal. The caller holds smu.
func (s *Service) usable(cred VerifiedCredential, now time.Time) (*Task, *refusal.Error) {
	t := s.st.tasks[cred.TaskID]
	c := s.st.creds[cred.JTI]
	switch {
	case t == nil:
		return nil, credentialRefusal("unknown_task", "the credential names a task that does not exist")
	case c == nil || c.TaskID != t.ID || c.Agent != cred.Agent || t.Agent != cred.Agent:
		return nil, credentialRefusal("unknown_credential", "the credential was not issued for this task and agent")
	case c.Revoked:
		return nil, credentialRefusal("credential_revoked", "the credential was revoked")
	case !now.Before(cred.Expiry) || !now.Before(c.ExpiresAt):
		return nil, credentialRefusal("credential_expired", "the credential has expired")
	case t.State != StateActive:
		return nil, credentialRefusal("task_not_active", "task %s is %s", t.ID, t.State)
	case !now.Before(t.ExpiresAt):
		s.Kick()
		return nil, credentialRefusal("task_expired", "task %s has expired", t.ID)
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
func (s *Service) reject(ctx context.Context, cred VerifiedCredential, e *refusal.Error, now time.Time) {
	ev := ledger.Event{Type: ledger.TypeAuthRejected, Time: now, TaskID: cred.TaskID, Agent: cred.Agent,
		Principal: cred.Subject, JTI: cred.JTI, Data: mustJSON(event.AuthRejected{Reason: e.Code, Detail: e.Detail})}
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

// Refusals of a call the policy did not deny, recorded in action.denied's
// data (refused), with the reason answered for each.
const (
	RefusedBindingRequired = event.RefusedBindingRequired
	ReasonBindingRequired  = "policy requires a sender-constrained token (DPoP or mTLS) for this call"
	// RefusedUnrecordable: the call's record could not be built in full
	// (its arguments could not be redacted, or its policy input encoded),
	// so it is denied, recorded without the bodies.
	RefusedUnrecordable = event.RefusedUnrecordable
	ReasonUnrecordable  = "writ could not build the record of this call, so it is denied; see the server log"
	// RefusedLimit: the call would pass a limit of its task's scope, or
	// of a task it was delegated from; data.limit names it, and the
	// reason says which (limitReason).
	RefusedLimit = event.RefusedLimit
)

// bound reports whether a credential binding is a real one.
func bound(binding string) bool { return binding == "dpop" || binding == "mtls" }

// decodeArguments decodes a call's arguments as encoding/json does
// (FuzzArgumentsAsEncodingJSON holds it to that), with the quicker
// implementation the event package decodes with: every call's arguments
// are decoded as sent, and again as recorded when redaction changed them.
func decodeArguments(raw []byte, m *map[string]any) error { return jsonv1.Unmarshal(raw, m) }
