package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of data.writ.decision and of its entries, as AST terms so that
// reading a result allocates nothing to look them up.
var (
	keyEffect      = ast.StringTerm("effect")
	keyReasons     = ast.StringTerm("reasons")
	keyPolicyIDs   = ast.StringTerm("policy_ids")
	keyObligations = ast.StringTerm("obligations")
	keyDeny        = ast.StringTerm("deny")
	keyApproval    = ast.StringTerm("approval")
	keyPermit      = ast.StringTerm("permit")
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
		for _, k := range obj.Keys() {
			if !k.Equal(keyDeny) && !k.Equal(keyApproval) && !k.Equal(keyPermit) {
				return Result{}, fmt.Errorf("%s has key %v: want deny, approval and permit (or effect)", RegoQuery, k)
			}
		}
	}
	return foldMatches(deny, approval, permit), nil
}

// regoMatches reads a list of rules that applied: an array or a set of
// {"id", "reason", "obligations"} objects.
func regoMatches(v *ast.Term, kind string) ([]ruleMatch, error) {
	var dst []ruleMatch
	err := regoEach(v, RegoQuery+"."+kind, func(t *ast.Term) error {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return fmt.Errorf("%s.%s holds a %s, want objects {id, reason, obligations}", RegoQuery, kind, ast.ValueName(t.Value))
		}
		var m ruleMatch
		err := obj.Iter(func(k, v *ast.Term) error {
			var err error
			switch k.Value {
			case ast.String("id"):
				m.id, err = regoString(v, kind+".id")
			case ast.String("reason"):
				m.reason, err = regoString(v, kind+".reason")
			case ast.String("obligations"):
				m.oblig, err = regoObligations(v)
			default:
				err = fmt.Errorf("%s.%s entry has key %v: want id, reason and obligations", RegoQuery, kind, k)
			}
			return err
		})
		if err != nil {
			return err
		}
		if m.id == "" {
			return fmt.Errorf("%s.%s entry %v has no id", RegoQuery, kind, t)
		}
		if m.reason == "" && kind != "permit" {
			m.reason = defaultReason(m.id)
		}
		dst = append(dst, m)
		return nil
	})
	return dst, err
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
// (boolean). An unknown key is an error: a misspelt obligation must not be
// silently dropped.
func regoObligations(t *ast.Term) (Obligations, error) {
	var o Obligations
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return o, fmt.Errorf("obligations is a %s, want an object", ast.ValueName(t.Value))
	}
	err := obj.Iter(func(k, v *ast.Term) error {
		switch k.Value {
		case ast.String("max_ttl"):
			var s string
			switch x := v.Value.(type) {
			case ast.Number:
				s = string(x)
			case ast.String:
				s = string(x)
			default:
				return fmt.Errorf("obligations.max_ttl is a %s, want seconds or a duration string", ast.ValueName(v.Value))
			}
			d, err := parseTTL(s)
			if err != nil {
				return err
			}
			o.MaxTTL = d
		case ast.String("approvals"):
			n, ok := v.Value.(ast.Number)
			i, isInt := n.Int64()
			if !ok || !isInt || i < 0 || i > 100 {
				return fmt.Errorf("obligations.approvals %v: want a whole number 0-100", v)
			}
			o.Approvals = int(i)
		case ast.String("redact"):
			l, err := regoStrings(v, "obligations.redact")
			if err != nil {
				return err
			}
			o.Redact = l
		case ast.String("record_output"):
			b, ok := v.Value.(ast.Boolean)
			if !ok {
				return fmt.Errorf("obligations.record_output is a %s, want a boolean", ast.ValueName(v.Value))
			}
			rec := bool(b)
			o.RecordOutput = &rec
		default:
			return fmt.Errorf("unknown obligation %v", k)
		}
		return nil
	})
	return o, err
}

// regoEach calls f for every element of an array or a set named name.
func regoEach(t *ast.Term, name string, f func(*ast.Term) error) error {
	switch x := t.Value.(type) {
	case *ast.Array:
		return x.Iter(f)
	case ast.Set:
		return x.Iter(f)
	}
	return fmt.Errorf("%s is a %s, want an array or a set", name, ast.ValueName(t.Value))
}

// regoStrings reads an array or a set of strings; nil (absent) is empty.
func regoStrings(t *ast.Term, name string) ([]string, error) {
	if t == nil {
		return []string{}, nil
	}
	var out []string
	err := regoEach(t, name, func(x *ast.Term) error {
		s, ok := x.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%s holds a %s, want strings", name, ast.ValueName(x.Value))
		}
		out = append(out, string(s))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
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
