package task

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
)

// Open opens a task for requester: it validates the request, asks policy
// (point task), and commits task.requested, policy.decided and the outcome
// (task.activated, approval.requested or task.denied) in one transaction.
// A policy deny is not an error: the answer's State is denied.
func (s *Service) Open(ctx context.Context, requester identity.Principal, req api.OpenTask) (api.TaskOpened, error) {
	if requester.ID == "" {
		return api.TaskOpened{}, newErr(ErrForbidden, "forbidden", "no requester identity")
	}
	scope := Scope(req.Scope)
	if err := validateOpen(req, scope); err != nil {
		return api.TaskOpened{}, err
	}
	scope, err := normalizeScopeResources(scope)
	if err != nil {
		return api.TaskOpened{}, err
	}
	scope = normalizeLimits(scope)
	ttl := DefaultTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return api.TaskOpened{}, invalid("ttl %q is not a duration such as \"15m\"", req.TTL)
		}
		if d < MinTTL || d > MaxTTL {
			return api.TaskOpened{}, invalid("ttl %s is outside [%s, %s]", d, MinTTL, MaxTTL)
		}
		ttl = d
	}

	if err := s.mu.Lock(ctx); err != nil {
		return api.TaskOpened{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	taskID := newID("tsk")
	in := &policy.Input{
		Principal: policy.Principal{ID: requester.ID, Roles: roleNames(requester.Roles)},
		Agent:     policy.Agent{ID: req.Agent},
		Task:      policy.Task{ID: taskID, Intent: req.Intent, Scope: scope.policy(), TTL: ttl.String()},
		Request:   policy.Request{Time: now, Environment: s.cfg.Environment, Gateway: policy.GatewayTask},
	}
	var parent string
	var parentExpiry time.Time
	if req.Parent != nil && *req.Parent != "" {
		parent = *req.Parent
		chain, exp, err := s.parentChain(requester, parent, scope, now)
		if err != nil {
			return api.TaskOpened{}, err
		}
		in.Task.ParentChain, parentExpiry = chain, exp
	}
	dec := s.cfg.Policy.Evaluate(ctx, policy.PointTask, in)

	env := ledger.Event{Time: now, TaskID: taskID, Principal: requester.ID, Agent: req.Agent}
	requested := env
	requested.Type = ledger.TypeTaskRequested
	requested.Data = mustJSON(event.TaskRequested{Scope: api.Scope(scope), ScopeHash: scope.Hash(), TTL: ttl.String(), Parent: parent, Environment: s.cfg.Environment})
	requested.Bodies = map[string][]byte{"intent": []byte(req.Intent)}
	decided, err := decidedEvent(env, dec, in)
	if err != nil {
		return api.TaskOpened{}, err
	}
	// The ledger links a child's request to the parent's delegation below.
	requested.Parent = parent
	events := []ledger.Event{requested, decided}
	if parent != "" {
		events = append(events, ledger.Event{Type: ledger.TypeTaskDelegated, Time: now, TaskID: parent,
			Principal: requester.ID, Agent: req.Agent, Data: mustJSON(event.TaskDelegated{Child: taskID})})
	}
	env.DecisionID, env.PolicyVersion = dec.ID, dec.PolicyVersion
	out := api.TaskOpened{TaskID: taskID, DecisionID: dec.ID, PolicyVersion: dec.PolicyVersion, ScopeHash: scope.Hash(), Reasons: dec.Reasons}
	switch dec.Effect {
	case policy.Allow:
		if dec.Obligations.MaxTTL > 0 && ttl > dec.Obligations.MaxTTL {
			ttl = dec.Obligations.MaxTTL
		}
		ttl = capToParent(ttl, now, parentExpiry)
		events = append(events, activatedEvent(env, ttl, now, ""))
		out.State = api.StateActive
	case policy.RequireApproval:
		n := max(dec.Obligations.Approvals, 1)
		ev := env
		ev.Type = ledger.TypeApprovalRequested
		ev.Data = mustJSON(event.ApprovalRequested{ApprovalID: newID("apr"), Kind: KindTask, Required: n,
			ExpiresAt: now.Add(s.cfg.ApprovalTTL), Reasons: dec.Reasons, Binding: event.Binding{ScopeHash: scope.Hash()}})
		events = append(events, ev)
		out.State, out.ApprovalsRequired = api.StatePendingApproval, n
	default:
		ev := env
		ev.Type = ledger.TypeTaskDenied
		ev.Data = mustJSON(event.TaskDenied{Reasons: nonNil(dec.Reasons)})
		events = append(events, ev)
		out.State = api.StateDenied
	}
	if _, err := s.commit(ctx, events, projectRows); err != nil {
		return api.TaskOpened{}, err
	}
	return out, nil
}

func validateOpen(req api.OpenTask, scope Scope) error {
	if err := checkOpenText(req); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(req.Agent) == "":
		return invalid("agent is required: the SPIFFE ID or OIDC subject of the agent that will act")
	case len(req.Agent) > 1024 || !utf8.ValidString(req.Agent):
		return invalid("agent must be valid UTF-8 of at most 1024 bytes")
	case strings.TrimSpace(req.Intent) == "":
		return invalid("intent is required: say what the agent is asked to do")
	case len(req.Intent) > MaxIntentBytes:
		return invalid("intent is %d bytes; the limit is %d", len(req.Intent), MaxIntentBytes)
	case !utf8.ValidString(req.Intent):
		return invalid("intent is not valid UTF-8")
	}
	return scope.Validate()
}

// parentChain checks the parent of a child task and returns the chain policy
// sees, immediate parent first, and the parent's expiry, which the child's
// is capped at. Only the parent's requester opens a child under it (the
// child's agent then delegates with the parent's task token); a parent the
// requester may not see is, to them, one that does not exist. The caller
// holds mu.
func (s *Service) parentChain(requester identity.Principal, parent string, scope Scope, now time.Time) ([]policy.ParentTask, time.Time, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	p := s.st.tasks[parent]
	switch {
	case p == nil || !s.st.sees(requester, p, now):
		return nil, time.Time{}, invalid("parent task %s does not exist", parent)
	case p.Requester != requester.ID:
		return nil, time.Time{}, newErr(ErrForbidden, "not_requester", "parent task %s was requested by someone else; only its requester may open a child task under it", parent)
	case p.State != StateActive || !now.Before(p.ExpiresAt) || s.st.endedAncestor(p, now) != nil:
		return nil, time.Time{}, newErr(ErrConflict, "parent_not_active", "parent task %s is not active", parent)
	case !scope.Within(p.Scope):
		return nil, time.Time{}, newErr(ErrForbidden, "scope_widens", "the scope is not within parent task %s's scope", parent)
	}
	var chain []policy.ParentTask
	for t := p; t != nil; t = s.st.tasks[t.Parent] {
		chain = append(chain, policy.ParentTask{ID: t.ID, Agent: t.Agent, Scope: t.Scope.policy()})
		if t.Parent == "" {
			break
		}
	}
	return chain, p.ExpiresAt, nil
}

// decidedEvent records a decision with its input document as a body. A
// document that cannot be encoded is an error: a decision is not recorded
// without the input it was made on.
func decidedEvent(env ledger.Event, d policy.Decision, in *policy.Input) (ledger.Event, error) {
	ev := env
	ev.Type = ledger.TypePolicyDecided
	ev.DecisionID, ev.PolicyVersion = d.ID, d.PolicyVersion
	ev.Data = mustJSON(event.PolicyDecided{Point: string(d.Point), Engine: d.Engine, Outcome: event.Outcome{
		Effect: string(d.Effect), Reasons: nonNil(d.Reasons), Obligations: d.Obligations, PolicyIDs: nonNil(d.PolicyIDs)}})
	doc, err := policy.Document(d.Point, in)
	if err != nil {
		return ev, fmt.Errorf("recording decision %s: %w", d.ID, err)
	}
	input, err := policy.MarshalInput(doc)
	if err != nil {
		return ev, fmt.Errorf("recording decision %s: encoding its input: %w", d.ID, err)
	}
	ev.Bodies = map[string][]byte{"input": input}
	return ev, nil
}

func activatedEvent(env ledger.Event, ttl time.Duration, now time.Time, approvalID string) ledger.Event {
	ev := env
	ev.Type = ledger.TypeTaskActivated
	ev.Data = mustJSON(event.TaskActivated{TTL: ttl.String(), ExpiresAt: now.Add(ttl), ApprovalID: approvalID})
	return ev
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func roleNames(roles []identity.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}
