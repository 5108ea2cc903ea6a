package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
)

// Issuer mints task tokens and checks them; *credential.Issuer is one.
type Issuer interface {
	Issue(c credential.Claims) (token, jti string, err error)
	Verify(ctx context.Context, raw string, now time.Time) (*credential.Token, error)
}

// Exchange is a token exchange (RFC 8693) whose tokens and proof the caller
// has verified.
type Exchange struct {
	// Agent is the verified agent identity: the subject token's, or for
	// delegation the actor token's.
	Agent identity.Principal
	// TaskID is the task the request's scope names.
	TaskID string
	// Parent, for delegation, is the verified, live access token of the
	// parent task, given as the subject token; nil otherwise.
	Parent *credential.Token
	// Cnf is the binding the request proved: a DPoP key, or the TLS client
	// certificate.
	Cnf credential.Cnf
	// Resource is the one resource the token is to be accepted at, as the
	// request's audience and resource name it; "" for writ's own audience.
	Resource string
}

// Issued is a task token issued by Exchange, recorded before it is
// returned.
type Issued struct {
	Token string
	JTI   string
	// ExpiresIn is the token's lifetime in whole seconds.
	ExpiresIn time.Duration
	// Scope is the token's scope, "task:<task id>".
	Scope string
	// DPoP reports whether the token is DPoP-bound.
	DPoP bool
}

// Exchange issues a task token to x.Agent for task x.TaskID: the task must
// be active, unexpired and the agent's, with no ended ancestor; a child
// task's token comes only by delegation from its parent's (x.Parent), whose
// task it must be a child of, within its scope, and reaching no further
// resource. Then policy decides at point exchange; the lifetime is the
// least of Config.CredentialTTL, the policy's max_ttl and the task's time
// left. The decision and the credential are recorded (RecordExchange)
// before the token is returned.
//
// A refusal is a *refusal.Error whose OAuth code the token endpoint answers
// with (invalid_grant, invalid_target, invalid_request); a refused task or
// delegation is recorded as auth.rejected, as Config.Rejections allows, and
// a policy refusal as policy.decided. Any failure to record or to issue is
// returned as an error: no token exists without its record.
func (s *Service) Exchange(ctx context.Context, x Exchange, rc Request) (Issued, error) {
	if s.cfg.Issuer == nil {
		return Issued{}, errors.New("task: no credential issuer configured")
	}
	now := s.now()
	t, err := s.exchangeTask(ctx, x, now)
	if err != nil {
		return Issued{}, err
	}
	actors := []string{x.Agent.ID}
	resource := x.Resource
	if p := x.Parent; p != nil {
		actors = append(actors, p.Actors...)
		// A child token reaches no further than its parent's.
		if p.Resource != "" && resource == "" {
			resource = p.Resource
		} else if p.Resource != "" && resource != p.Resource {
			return Issued{}, s.refuseExchange(ctx, ErrInvalid, t.ID, x.Agent.ID, p.JTI, credential.CodeInvalidTarget, credential.CodeInvalidTarget,
				"the subject token is bound to another resource; a child token cannot name a resource its parent's token does not reach")
		}
	}

	in := &policy.Input{
		Principal:  policy.Principal{ID: t.Requester},
		Agent:      policy.Agent{ID: x.Agent.ID, Issuer: x.Agent.Issuer},
		Task:       policy.Task{ID: t.ID, Scope: t.Scope.policy(), State: string(t.State), ParentChain: s.ancestors(t)},
		Credential: &policy.Credential{ActChain: actors, Binding: x.Cnf.Binding()},
		Request:    policy.Request{Time: now.UTC(), Environment: s.cfg.Environment, Gateway: rc.Gateway, Source: rc.Source, TraceID: rc.TraceID},
	}
	dec := s.cfg.Policy.Evaluate(ctx, policy.PointExchange, in)
	if !dec.Allowed() {
		if err := s.RecordDecision(ctx, t.ID, x.Agent.ID, dec, in); err != nil {
			return Issued{}, err
		}
		code, reason := "denied", "policy denies a credential for this task"
		if dec.Effect == policy.RequireApproval {
			code, reason = "approval_required", "policy requires an approval before a credential is issued; the task must be approved first"
		}
		if len(dec.Reasons) > 0 {
			reason += ": " + strings.Join(dec.Reasons, "; ")
		}
		return Issued{}, exchangeRefusal(ErrForbidden, code, credential.CodeInvalidGrant, reason)
	}
	if dec.Obligations.RequireBinding && !x.Cnf.Bound() {
		// The policy allows a credential only if it is sender-constrained.
		if err := s.RecordDecision(ctx, t.ID, x.Agent.ID, dec, in); err != nil {
			return Issued{}, err
		}
		return Issued{}, exchangeRefusal(ErrInvalid, RefusedBindingRequired, credential.CodeInvalidRequest,
			"policy requires a sender-constrained token here: send a DPoP proof, or present a client certificate over TLS")
	}

	ttl := s.cfg.CredentialTTL
	if m := dec.Obligations.MaxTTL; m > 0 && m < ttl {
		ttl = m
	}
	if left := t.ExpiresAt.Sub(now); left < ttl {
		ttl = left
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		return Issued{}, exchangeRefusal(ErrConflict, "task_expiring", credential.CodeInvalidGrant, "the task expires in less than a second")
	}
	token, jti, err := s.cfg.Issuer.Issue(credential.Claims{Subject: t.Requester, Actors: actors, TaskID: t.ID, TTL: ttl, Cnf: x.Cnf, Resource: resource})
	if err != nil {
		s.log.ErrorContext(ctx, "issuing an access token failed", "err", err, "task_id", t.ID)
		return Issued{}, notIssued()
	}
	// Verifying the fresh token gives its exact exp and warms the cache for
	// the agent's first call.
	tok, err := s.cfg.Issuer.Verify(ctx, token, now)
	if err != nil {
		s.log.ErrorContext(ctx, "a freshly issued token does not verify", "err", err, "task_id", t.ID)
		return Issued{}, notIssued()
	}
	c := Credential{JTI: jti, TaskID: t.ID, Agent: x.Agent.ID, Subject: t.Requester, ExpiresAt: tok.Expiry, Binding: x.Cnf.Binding()}
	if err := s.RecordExchange(ctx, c, dec, in); err != nil {
		return Issued{}, err
	}
	return Issued{Token: token, JTI: jti, ExpiresIn: tok.Expiry.Sub(tok.IssuedAt), Scope: credential.ScopePrefix + t.ID, DPoP: x.Cnf.JKT != ""}, nil
}

// exchangeTask returns the task x asks a token for once it is active,
// unexpired and x.Agent's (only the agent named on a task gets its
// credential) with no ended ancestor, and a child task only for delegation
// from its parent, within the parent's scope and delegation depth.
func (s *Service) exchangeTask(ctx context.Context, x Exchange, now time.Time) (Task, error) {
	t, err := s.Get(x.TaskID)
	kind, reason, detail := ErrConflict, "", ""
	switch {
	case err != nil:
		kind, reason, detail = ErrNotFound, "unknown_task", "no such task"
	case t.Agent != x.Agent.ID:
		kind, reason, detail = ErrForbidden, "agent_mismatch", "the task belongs to another agent"
	case t.State != StateActive:
		reason, detail = "task_not_active", fmt.Sprintf("the task is %s, not active", t.State)
	case !now.Before(t.ExpiresAt):
		reason, detail = "task_expired", "the task has expired"
	default:
		if a, ended := s.EndedAncestor(t.ID); ended {
			reason, detail = ReasonAncestorEnded, fmt.Sprintf("the task's ancestor task %s is no longer active", a.ID)
		}
	}
	if reason != "" {
		return t, s.refuseExchange(ctx, kind, x.TaskID, x.Agent.ID, "", reason, credential.CodeInvalidGrant, detail)
	}
	p := x.Parent
	if p == nil {
		if t.Parent != "" {
			// The act chain must show who delegated: a child task's token
			// comes only from a delegation exchange.
			return t, s.refuseExchange(ctx, ErrInvalid, t.ID, x.Agent.ID, "", "delegation_required", credential.CodeInvalidGrant,
				"the task is a child task: exchange the parent's access token as subject_token with this identity as actor_token")
		}
		return t, nil
	}
	pt, err := s.Get(p.TaskID)
	switch {
	case t.Parent != p.TaskID || err != nil:
		detail = "the task is not a child of the subject token's task; open it with parent set first"
	case !t.Scope.Within(pt.Scope):
		detail = "the task's scope is not within its parent's"
	case len(p.Actors)+1 > credential.MaxActorDepth:
		detail = fmt.Sprintf("the delegation chain would exceed %d agents", credential.MaxActorDepth)
	default:
		return t, nil
	}
	return t, s.refuseExchange(ctx, ErrForbidden, t.ID, x.Agent.ID, p.JTI, "delegation_refused", credential.CodeInvalidGrant, detail)
}

// ancestors lists t's ancestors, immediate parent first, for policy.
func (s *Service) ancestors(t Task) []policy.ParentTask {
	s.smu.Lock()
	defer s.smu.Unlock()
	var chain []policy.ParentTask
	for p := s.st.tasks[t.Parent]; p != nil && len(chain) <= credential.MaxActorDepth; p = s.st.tasks[p.Parent] {
		chain = append(chain, policy.ParentTask{ID: p.ID, Agent: p.Agent, Scope: p.Scope.policy()})
	}
	return chain
}

// refuseExchange records a refused exchange as auth.rejected, with reason
// and detail, and returns its refusal, answered with the OAuth code oauth.
// The refusal stands whether or not the record is durable; Rejections
// counts and logs a record that failed.
func (s *Service) refuseExchange(ctx context.Context, sentinel error, taskID, agent, jti, reason, oauth, detail string) *refusal.Error {
	_ = s.RecordRejection(ctx, Rejection{TaskID: taskID, Agent: agent, JTI: jti, Reason: reason, Detail: detail})
	return exchangeRefusal(sentinel, reason, oauth, detail)
}

// exchangeRefusal is a refusal of kind sentinel (one of the Err
// sentinels), answered at the token endpoint with the OAuth code oauth.
func exchangeRefusal(sentinel error, code, oauth, detail string) *refusal.Error {
	return &refusal.Error{Kind: kindOf(sentinel), Code: code, OAuth: oauth, Detail: detail, Err: sentinel}
}

// notIssued answers a token the issuer could not mint or check.
func notIssued() *refusal.Error {
	return &refusal.Error{Kind: refusal.Internal, Code: "server_error", OAuth: "server_error", Detail: "the token could not be issued"}
}
