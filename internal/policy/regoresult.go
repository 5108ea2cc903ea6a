package policy

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of data.writ.decision and of its entries, as AST terms so that
// reading a result allocates nothing to look them up.
var (
	keyEffect       = ast.StringTerm("effect")
	keyReasons      = ast.StringTerm("reasons")
	keyPolicyIDs    = ast.StringTerm("policy_ids")
	keyObligations  = ast.StringTerm("obligations")
	keyID           = ast.StringTerm("id")
	keyReason       = ast.StringTerm("reason")
	keyMaxTTL       = ast.StringTerm("max_ttl")
	keyApprovals    = ast.StringTerm("approvals")
	keyRedact       = ast.StringTerm("redact")
	keyRecordOutput = ast.StringTerm("record_output")
	keyRequireBind  = ast.StringTerm("require_binding")
	keyDeny         = ast.StringTerm("deny")
	keyApproval     = ast.StringTerm("approval")
	keyPermit       = ast.StringTerm("permit")
)

// regoResult reads data.writ.decision. It has one of two shapes:
//
//   - the rules that applied, {"deny": [...], "approval": [...],
//     "permit": [...]} (each key optional, arrays or sets of
//     {"id", "reason", "obligations"}), folded by foldMatches exactly as
//     Cedar's policies are;
//   - an explicit decision, {"effect": ..., "reasons": [...],
//     "policy_ids": [...], "obligations": {...}}, taken as written.
//
// Anything else is an error, which the caller turns into a deny.
func regoResult(v ast.Value) (Result, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Result{}, fmt.Errorf("%s is a %s, want an object", RegoQuery, ast.ValueName(v))
	}
	if obj.Get(keyEffect) != nil {
		return regoExplicit(obj)
	}
	var deny, approval, permit []ruleMatch
	var err error
	found := 0
	if t := obj.Get(keyDeny); t != nil {
		found++
		if deny, err = regoMatches(t, "deny"); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(keyApproval); t != nil {
		found++
		if approval, err = regoMatches(t, "approval"); err != nil {
			return Result{}, err
		}
	}
	if t := obj.Get(keyPermit); t != nil {
		found++
		if permit, err = regoMatches(t, "permit"); err != nil {
			return Result{}, err
		}
	}
	if found < obj.Len() {
		return Result{}, fmt.Errorf("%s has key %v: want deny, approval and permit (or effect)",
			RegoQuery, unknownKey(obj, keyDeny, keyApproval, keyPermit))
	}
	return foldMatches(deny, approval, permit), nil
}

// regoMatches reads a list of rules that applied: an array or a set of
// {"id", "reason", "obligations"} objects.
func regoMatches(v *ast.Term, kind string) ([]ruleMatch, error) {
	l, err := regoListOf(v, RegoQuery+"."+kind)
	if err != nil || l.Len() == 0 {
		return nil, err
	}
	dst := make([]ruleMatch, l.Len())
	for i := range dst {
		t := l.Elem(i)
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("%s.%s holds a %s, want objects {id, reason, obligations}", RegoQuery, kind, ast.ValueName(t.Value))
		}
		m := &dst[i]
		found := 0
		if x := obj.Get(keyID); x != nil {
			found++
			if m.id, err = regoString(x, kind+".id"); err != nil {
				return nil, err
			}
		}
		if x := obj.Get(keyReason); x != nil {
			found++
			if m.reason, err = regoString(x, kind+".reason"); err != nil {
				return nil, err
			}
		}
		if x := obj.Get(keyObligations); x != nil {
			found++
			if m.oblig, err = regoObligations(x); err != nil {
				return nil, err
			}
		}
		if found < obj.Len() {
			return nil, fmt.Errorf("%s.%s entry has key %v: want id, reason and obligations",
				RegoQuery, kind, unknownKey(obj, keyID, keyReason, keyObligations))
		}
		if m.id == "" {
			return nil, fmt.Errorf("%s.%s entry %v has no id", RegoQuery, kind, t)
		}
		if m.reason == "" && kind != "permit" {
			m.reason = defaultReason(m.id)
		}
	}
	return dst, nil
}

// unknownKey returns the first key of obj that is not one of known.
func unknownKey(obj ast.Object, known ...*ast.Term) *ast.Term {
	for _, k := range obj.Keys() {
		if !slices.ContainsFunc(known, k.Equal) {
			return k
		}
	}
	return nil
}

// regoExplicit reads a decision that names its effect. Keys other than the
// four it reads are ignored.
func regoExplicit(obj ast.Object) (Result, error) {
	var r Result
	es, _ := obj.Get(keyEffect).Value.(ast.String)
	eff, ok := parseEffect(string(es))
	if !ok {
		return Result{}, fmt.Errorf("%s.effect %v: want allow, deny or require_approval", RegoQuery, obj.Get(keyEffect))
	}
	r.Effect = eff
	var err error
	if r.Reasons, err = regoStrings(obj.Get(keyReasons), "reasons"); err != nil {
		return Result{}, err
	}
	if r.PolicyIDs, err = regoStrings(obj.Get(keyPolicyIDs), "policy_ids"); err != nil {
		return Result{}, err
	}
	if t := obj.Get(keyObligations); t != nil {
		if r.Obligations, err = regoObligations(t); err != nil {
			return Result{}, err
		}
	}
	if r.Effect == Deny && len(r.Reasons) == 0 {
		r.Reasons = []string{"denied by policy"}
	}
	if r.Effect == RequireApproval {
		r.Obligations.Approvals = max(r.Obligations.Approvals, 1)
	}
	r.normalize()
	return r, nil
}

// regoObligations reads an obligations object: max_ttl (seconds or a
// duration string), approvals (0-100), redact (strings), record_output
// (boolean), require_binding (boolean). An unknown key is an error: a misspelt obligation must not be
// silently dropped.
func regoObligations(t *ast.Term) (Obligations, error) {
	var o Obligations
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return o, fmt.Errorf("obligations is a %s, want an object", ast.ValueName(t.Value))
	}
	found := 0
	if v := obj.Get(keyMaxTTL); v != nil {
		found++
		var s string
		switch x := v.Value.(type) {
		case ast.Number:
			s = string(x)
		case ast.String:
			s = string(x)
		default:
			return o, fmt.Errorf("obligations.max_ttl is a %s, want seconds or a duration string", ast.ValueName(v.Value))
		}
		d, err := parseTTL(s)
		if err != nil {
			return o, err
		}
		o.MaxTTL = d
	}
	if v := obj.Get(keyApprovals); v != nil {
		found++
		n, ok := v.Value.(ast.Number)
		i, isInt := n.Int64()
		if !ok || !isInt || i < 0 || i > 100 {
			return o, fmt.Errorf("obligations.approvals %v: want a whole number 0-100", v)
		}
		o.Approvals = int(i)
	}
	if v := obj.Get(keyRedact); v != nil {
		found++
		l, err := regoStrings(v, "obligations.redact")
		if err != nil {
			return o, err
		}
		o.Redact = l
	}
	if v := obj.Get(keyRecordOutput); v != nil {
		found++
		b, ok := v.Value.(ast.Boolean)
		if !ok {
			return o, fmt.Errorf("obligations.record_output is a %s, want a boolean", ast.ValueName(v.Value))
		}
		rec := bool(b)
		o.RecordOutput = &rec
	}
	if v := obj.Get(keyRequireBind); v != nil {
		found++
		b, ok := v.Value.(ast.Boolean)
		if !ok {
			return o, fmt.Errorf("obligations.require_binding is a %s, want a boolean", ast.ValueName(v.Value))
		}
		o.RequireBinding = bool(b)
	}
	if found < obj.Len() {
		return o, fmt.Errorf("unknown obligation %v", unknownKey(obj, keyMaxTTL, keyApprovals, keyRedact, keyRecordOutput, keyRequireBind))
	}
	return o, nil
}

// regoList is an array or a set, read without copying it.
type regoList struct {
	arr *ast.Array
	set []*ast.Term
}

func regoListOf(t *ast.Term, name string) (regoList, error) {
	switch x := t.Value.(type) {
	case *ast.Array:
		return regoList{arr: x}, nil
	case ast.Set:
		return regoList{set: x.Slice()}, nil
	}
	return regoList{}, fmt.Errorf("%s is a %s, want an array or a set", name, ast.ValueName(t.Value))
}

func (l regoList) Len() int {
	if l.arr != nil {
		return l.arr.Len()
	}
	return len(l.set)
}

func (l regoList) Elem(i int) *ast.Term {
	if l.arr != nil {
		return l.arr.Elem(i)
	}
	return l.set[i]
}

// regoStrings reads an array or a set of strings; nil (absent) is empty.
func regoStrings(t *ast.Term, name string) ([]string, error) {
	if t == nil {
		return []string{}, nil
	}
	l, err := regoListOf(t, name)
	if err != nil {
		return nil, err
	}
	out := make([]string, l.Len())
	for i := range out {
		x := l.Elem(i)
		s, ok := x.Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("%s holds a %s, want strings", name, ast.ValueName(x.Value))
		}
		out[i] = string(s)
	}
	return out, nil
}

func regoString(t *ast.Term, name string) (string, error) {
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s is a %s, want a string", name, ast.ValueName(t.Value))
	}
	return string(s), nil
}
