package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

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
