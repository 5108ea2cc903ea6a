package policy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// Cedar bundle files besides the .cedar policies.
const (
	cedarEntitiesFile = "entities.json"
	cedarSchemaSuffix = ".cedarschema"
)

// Cedar annotations writ reads. Every policy should carry @id; a forbid
// carries @reason; a forbid with @effect("require_approval") asks for
// approval instead of denying; obligations are the rest.
const (
	annID           = "id"
	annReason       = "reason"
	annEffect       = "effect"
	annMaxTTL       = "max_ttl"
	annApprovals    = "approvals"
	annRedact       = "redact"
	annRecordOutput = "record_output"
	annRequireBind  = "require_binding"
)

// Cedar entity types of the request.
const (
	cedarAgentType  = types.EntityType("Agent")
	cedarActionType = types.EntityType("Action")
	cedarTaskType   = types.EntityType("Task")
	cedarToolType   = types.EntityType("Tool")
)

type cedarEngine struct {
	// permits and hard forbids decide allow or deny; soft forbids, evaluated
	// only when the first set allows, turn an allow into require_approval.
	decide   cedar.PolicyMap
	soft     cedar.PolicyMap
	meta     map[cedar.PolicyID]*ruleMatch
	entities types.EntityMap
	// members are the context members the policies read; nil means all.
	members cedarMembers
	// hist builds the parts of the history the policies read.
	hist    *historyPlan
	actions actionCache
	derived derivedCache[types.Value]
}

func compileCedar(src Sources) (*cedarEngine, error) {
	e := &cedarEngine{
		decide:   cedar.PolicyMap{},
		soft:     cedar.PolicyMap{},
		meta:     map[cedar.PolicyID]*ruleMatch{},
		entities: types.EntityMap{},
	}
	var validator *validate.Validator
	for _, f := range src.Files {
		if !strings.HasSuffix(f.Path, cedarSchemaSuffix) {
			continue
		}
		if validator != nil {
			return nil, fmt.Errorf("%s: only one %s file is allowed", f.Path, cedarSchemaSuffix)
		}
		var s schema.Schema
		s.SetFilename(f.Path)
		if err := s.UnmarshalCedar(f.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		rs, err := s.Resolve()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		validator = validate.New(rs)
	}
	for _, f := range src.Files {
		switch {
		case f.Path == cedarEntitiesFile:
			if err := e.entities.UnmarshalJSON(f.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
		case strings.HasSuffix(f.Path, ".cedar"):
			list, err := cedar.NewPolicyListFromBytes(f.Path, f.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			for i, p := range list {
				if err := e.add(f.Path, i, p, validator); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(e.decide)+len(e.soft) == 0 {
		return nil, fmt.Errorf("no Cedar policies")
	}
	e.members = cedarMembers{}
	var hist [][]string
	for _, set := range []cedar.PolicyMap{e.decide, e.soft} {
		for _, p := range set {
			if !contextMembers(p, e.members, &hist) {
				e.members, e.hist = nil, newHistoryPlan(nil)
				return e, nil
			}
		}
	}
	e.hist = newHistoryPlan(hist)
	return e, nil
}

func (e *cedarEngine) add(file string, i int, p *cedar.Policy, v *validate.Validator) error {
	ann := p.Annotations()
	pos := p.Position()
	where := fmt.Sprintf("%s:%d", file, pos.Line)
	m := &ruleMatch{id: string(ann[annID]), reason: string(ann[annReason])}
	if m.id == "" {
		m.id = fmt.Sprintf("%s#%d", file, i)
	}
	pid := cedar.PolicyID(m.id)
	if _, dup := e.meta[pid]; dup {
		return fmt.Errorf("%s: duplicate policy @id %q", where, m.id)
	}
	if v != nil {
		if err := v.Policy(m.id, (*xast.Policy)(p.AST())); err != nil {
			return fmt.Errorf("%s: policy %s fails schema validation: %w", where, m.id, err)
		}
	}
	var err error
	if m.oblig, err = cedarObligations(ann); err != nil {
		return fmt.Errorf("%s: policy %s: %w", where, m.id, err)
	}
	e.meta[pid] = m
	switch eff := string(ann[annEffect]); {
	case eff == "":
		e.decide[pid] = p
	case eff == string(RequireApproval) && p.Effect() == cedar.Forbid:
		e.soft[pid] = p
	default:
		return fmt.Errorf("%s: policy %s: @effect(%q): only a forbid may carry @effect(\"require_approval\")", where, m.id, eff)
	}
	if p.Effect() == cedar.Forbid && m.reason == "" {
		m.reason = defaultReason(m.id)
	}
	return nil
}

func cedarObligations(ann cedar.Annotations) (Obligations, error) {
	var o Obligations
	if s, ok := ann[annMaxTTL]; ok {
		d, err := parseTTL(string(s))
		if err != nil {
			return o, err
		}
		o.MaxTTL = d
	}
	if s, ok := ann[annApprovals]; ok {
		n, err := strconv.Atoi(string(s))
		if err != nil || n < 0 || n > 100 {
			return o, fmt.Errorf("@approvals(%q): want a whole number 0-100", s)
		}
		o.Approvals = n
	}
	if s, ok := ann[annRedact]; ok {
		for f := range strings.SplitSeq(string(s), ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.Redact = append(o.Redact, f)
			}
		}
	}
	if s, ok := ann[annRecordOutput]; ok {
		b, err := strconv.ParseBool(string(s))
		if err != nil {
			return o, fmt.Errorf("@record_output(%q): want true or false", s)
		}
		o.RecordOutput = &b
	}
	if s, ok := ann[annRequireBind]; ok {
		b, err := strconv.ParseBool(string(s))
		if err != nil {
			return o, fmt.Errorf("@require_binding(%q): want true or false", s)
		}
		o.RequireBinding = b
	}
	return o, nil
}

// Eval implements Engine. Cedar has no cancellation; its evaluation is
// bounded by the policy text, and the caller discards a late answer. The
// satisfied policies are folded by foldMatches, as Rego's rules are: hard
// forbids deny, permits allow, and soft forbids (evaluated only when the
// request would be allowed) ask for approval.
func (e *cedarEngine) Eval(_ context.Context, in *Input) (Result, error) {
	req := cedarRequest(in, e.members, e.hist, &e.actions, &e.derived)
	dec, diag := cedar.Authorize(e.decide, e.entities, req)
	if err := e.forbidErrors(diag); err != nil {
		return Result{}, err
	}
	var denyBuf, permitBuf, softBuf [8]ruleMatch
	deny, permit, soft := denyBuf[:0], permitBuf[:0], softBuf[:0]
	if dec == cedar.Deny {
		// The reasons of a deny are the satisfied forbids (none when no
		// permit was satisfied).
		for _, d := range diag.Reasons {
			deny = append(deny, *e.meta[d.PolicyID])
		}
		return foldMatches(deny, nil, nil), nil
	}
	for _, d := range diag.Reasons {
		permit = append(permit, *e.meta[d.PolicyID])
	}
	if len(e.soft) > 0 {
		_, sdiag := cedar.Authorize(e.soft, e.entities, req)
		if err := e.forbidErrors(sdiag); err != nil {
			return Result{}, err
		}
		for _, d := range sdiag.Reasons {
			soft = append(soft, *e.meta[d.PolicyID])
		}
	}
	return foldMatches(nil, soft, permit), nil
}

// forbidErrors fails the evaluation when a forbid policy could not be
// evaluated. Cedar skips a policy that errors; for a forbid that would be
// failing open, so writ denies instead. A permit that errors does not apply,
// which is already closed.
func (e *cedarEngine) forbidErrors(diag cedar.Diagnostic) error {
	for _, de := range diag.Errors {
		p := e.decide[de.PolicyID]
		if p == nil {
			p = e.soft[de.PolicyID]
		}
		if p != nil && p.Effect() == cedar.Forbid {
			return fmt.Errorf("cedar policy %s: %s", de.PolicyID, de.Message)
		}
	}
	return nil
}
