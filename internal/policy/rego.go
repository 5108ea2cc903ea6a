package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// RegoQuery is the rule a Rego bundle must define: an object with effect,
// reasons, obligations and policy_ids (see docs/policy.md).
const RegoQuery = "data.writ.decision"

// regoDataFile, at the bundle root, is loaded as the data document (data.*).
const regoDataFile = "data.json"

type regoEngine struct {
	pq rego.PreparedEvalQuery
}

// regoModules parses the bundle's policy modules (tests excluded unless
// withTests) as Rego v1.
func regoModules(src Sources, withTests bool) (map[string]*ast.Module, error) {
	mods := map[string]*ast.Module{}
	for _, f := range src.Files {
		if !strings.HasSuffix(f.Path, ".rego") {
			continue
		}
		if !withTests && strings.HasSuffix(f.Path, "_test.rego") {
			continue
		}
		m, err := ast.ParseModuleWithOpts(f.Path, string(f.Data), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		mods[f.Path] = m
	}
	if len(mods) == 0 {
		return nil, errors.New("no Rego policy modules (only tests?)")
	}
	return mods, nil
}

// regoStore builds the data document from data.json, if the bundle has one.
func regoStore(src Sources) (storage.Store, error) {
	data := map[string]any{}
	for _, f := range src.Files {
		if f.Path != regoDataFile {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(f.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s: trailing data after the JSON object", f.Path)
		}
	}
	return inmem.NewFromObject(data), nil
}

// compileRego compiles the bundle once into a prepared query. strict turns
// on OPA's strict mode (unused variables and imports, deprecated built-ins),
// which check uses as a lint.
func compileRego(ctx context.Context, src Sources, strict bool) (*regoEngine, error) {
	mods, err := regoModules(src, false)
	if err != nil {
		return nil, err
	}
	if !definesDecision(mods) {
		return nil, fmt.Errorf("no module defines %s (package writ, rule decision)", RegoQuery)
	}
	store, err := regoStore(src)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(RegoQuery),
		rego.Store(store),
		rego.Strict(strict),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, m := range mods {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &regoEngine{pq: pq}, nil
}

func definesDecision(mods map[string]*ast.Module) bool {
	want := ast.MustParseRef(RegoQuery)
	for _, m := range mods {
		for _, r := range m.Rules {
			if r.Ref().GroundPrefix().Equal(want) || m.Package.Path.Extend(r.Ref().GroundPrefix()).Equal(want) {
				return true
			}
		}
	}
	return false
}

// Eval implements Engine.
func (e *regoEngine) Eval(ctx context.Context, in *Input) (Result, error) {
	rs, err := e.pq.Eval(ctx, rego.EvalParsedInput(regoValue(in)))
	if err != nil {
		return Result{}, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Result{}, errors.New(RegoQuery + " is undefined")
	}
	return regoResult(rs[0].Expressions[0].Value)
}

// regoResult reads the structured decision object.
func regoResult(v any) (Result, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Result{}, fmt.Errorf("%s is %T, want an object", RegoQuery, v)
	}
	var r Result
	es, _ := obj["effect"].(string)
	eff, ok := parseEffect(es)
	if !ok {
		return Result{}, fmt.Errorf("%s.effect %q: want allow, deny or require_approval", RegoQuery, es)
	}
	r.Effect = eff
	var err error
	if r.Reasons, err = stringList(obj["reasons"], "reasons"); err != nil {
		return Result{}, err
	}
	if r.PolicyIDs, err = stringList(obj["policy_ids"], "policy_ids"); err != nil {
		return Result{}, err
	}
	if ob, ok := obj["obligations"]; ok {
		m, ok := ob.(map[string]any)
		if !ok {
			return Result{}, fmt.Errorf("%s.obligations is %T, want an object", RegoQuery, ob)
		}
		if r.Obligations, err = regoObligations(m); err != nil {
			return Result{}, err
		}
	}
	if r.Effect == Deny && len(r.Reasons) == 0 {
		r.Reasons = []string{"denied by policy"}
	}
	r.normalize()
	return r, nil
}

func regoObligations(m map[string]any) (Obligations, error) {
	var o Obligations
	for k, v := range m {
		switch k {
		case "max_ttl":
			var s string
			switch t := v.(type) {
			case json.Number:
				s = t.String()
			case string:
				s = t
			default:
				return o, fmt.Errorf("obligations.max_ttl is %T, want seconds or a duration string", v)
			}
			d, err := parseTTL(s)
			if err != nil {
				return o, err
			}
			o.MaxTTL = d
		case "approvals":
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil || i < 0 || i > 100 {
				return o, fmt.Errorf("obligations.approvals %v: want a whole number 0-100", v)
			}
			o.Approvals = int(i)
		case "redact":
			l, err := stringList(v, "obligations.redact")
			if err != nil {
				return o, err
			}
			o.Redact = l
		case "record_output":
			b, ok := v.(bool)
			if !ok {
				return o, fmt.Errorf("obligations.record_output is %T, want a boolean", v)
			}
			o.RecordOutput = &b
		default:
			return o, fmt.Errorf("unknown obligation %q", k)
		}
	}
	return o, nil
}

func stringList(v any, name string) ([]string, error) {
	if v == nil {
		return []string{}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is %T, want an array of strings", name, v)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s holds %T, want strings", name, x)
		}
		out = append(out, s)
	}
	return out, nil
}

// regoValue converts the input document to an AST value directly, avoiding a
// JSON round trip on every decision.
func regoValue(in *Input) ast.Value {
	o := ast.NewObjectWithCapacity(10)
	o.Insert(ast.InternedTerm("version"), ast.InternedTerm(in.Version))
	o.Insert(ast.InternedTerm("point"), ast.StringTerm(string(in.Point)))
	o.Insert(ast.InternedTerm("principal"), ast.NewTerm(obj(
		"id", str(in.Principal.ID),
		"roles", strs(in.Principal.Roles))))
	o.Insert(ast.InternedTerm("agent"), ast.NewTerm(obj(
		"id", str(in.Agent.ID),
		"issuer", str(in.Agent.Issuer))))
	chain := make([]*ast.Term, len(in.Task.ParentChain))
	for i, p := range in.Task.ParentChain {
		chain[i] = ast.NewTerm(obj("id", str(p.ID), "agent", str(p.Agent), "scope", scopeValue(&p.Scope)))
	}
	o.Insert(ast.InternedTerm("task"), ast.NewTerm(obj(
		"id", str(in.Task.ID),
		"intent", str(in.Task.Intent),
		"scope", scopeValue(&in.Task.Scope),
		"ttl", str(in.Task.TTL),
		"state", str(in.Task.State),
		"parent_chain", ast.NewTerm(ast.NewArray(chain...)))))
	if a := in.Action; a != nil {
		args := ast.NewTerm(ast.NewObject())
		if len(a.Arguments) > 0 {
			if v, err := ast.InterfaceToValue(a.Arguments); err == nil {
				args = ast.NewTerm(v)
			}
		}
		o.Insert(ast.InternedTerm("action"), ast.NewTerm(obj(
			"tool", str(a.Tool),
			"operation", str(a.Operation),
			"resource", str(a.Resource),
			"arguments", args,
			"data_class", str(a.DataClass))))
	}
	if c := in.Credential; c != nil {
		o.Insert(ast.InternedTerm("credential"), ast.NewTerm(obj(
			"jti", str(c.JTI),
			"expires_at", str(timeString(c.ExpiresAt)),
			"ttl", str(c.TTL),
			"act_chain", strs(c.ActChain),
			"binding", str(c.Binding))))
	}
	o.Insert(ast.InternedTerm("request"), ast.NewTerm(obj(
		"time", str(timeString(in.Request.Time)),
		"environment", str(in.Request.Environment),
		"gateway", str(in.Request.Gateway),
		"source", str(in.Request.Source),
		"trace_id", str(in.Request.TraceID))))
	d := &in.Derived
	o.Insert(ast.InternedTerm("derived"), ast.NewTerm(obj(
		"tool_in_scope", ast.InternedTerm(d.ToolInScope),
		"resource_in_scope", ast.InternedTerm(d.ResourceInScope),
		"operation_in_scope", ast.InternedTerm(d.OperationInScope),
		"environment_in_scope", ast.InternedTerm(d.EnvironmentInScope),
		"data_class_level", ast.InternedTerm(d.DataClassLevel),
		"ceiling_level", ast.InternedTerm(d.CeilingLevel),
		"data_class_known", ast.InternedTerm(d.DataClassKnown),
		"delegated", ast.InternedTerm(d.Delegated),
		"narrows_parent", ast.InternedTerm(d.NarrowsParent),
		"ttl_seconds", ast.IntNumberTerm(int(d.TTLSeconds)),
		"ttl_valid", ast.InternedTerm(d.TTLValid))))
	return o
}

func scopeValue(s *Scope) *ast.Term {
	return ast.NewTerm(obj(
		"tools", strs(s.Tools),
		"resources", strs(s.Resources),
		"operations", strs(s.Operations),
		"data_class", str(s.DataClass),
		"environments", strs(s.Environments)))
}

// obj builds an object from alternating key strings and value terms.
func obj(kv ...any) ast.Object {
	o := ast.NewObjectWithCapacity(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		o.Insert(ast.InternedTerm(kv[i].(string)), kv[i+1].(*ast.Term))
	}
	return o
}

func str(s string) *ast.Term { return ast.InternedTerm(s) }

func strs(l []string) *ast.Term {
	ts := make([]*ast.Term, len(l))
	for i, s := range l {
		ts[i] = ast.InternedTerm(s)
	}
	return ast.NewTerm(ast.NewArray(ts...))
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
