package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// regoInputMembers returns the top-level members of input that mods read
// (input.task, input["derived"], import input.agent), or nil when some rule
// uses input in a way that could reach any member (input as a whole, or
// indexed by a variable). Like the Cedar engine's context pruning, it lets
// an evaluation build only what the bundle can see.
func regoInputMembers(mods map[string]*ast.Module) map[string]bool {
	members := map[string]bool{}
	bare, named := 0, 0
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) {
					bare++
				}
			case ast.Ref:
				if len(v) < 2 || !v[0].Equal(ast.InputRootDocument) {
					break
				}
				if s, ok := v[1].Value.(ast.String); ok {
					members[string(s)] = true
					named++
				}
			}
			return false
		})
	}
	// Every input.<member> ref holds one input variable; any other is a use
	// of the whole document.
	if bare > named {
		return nil
	}
	return members
}

// Keys of the input document, made once and shared by every input: a key
// term is never modified, and not allocating them halves the cost of
// building the document.
var (
	kVersion, kPoint, kPrincipal, kAgent, kTask = key("version"), key("point"), key("principal"), key("agent"), key("task")
	kAction, kCredential, kRequest, kDerived    = key("action"), key("credential"), key("request"), key("derived")

	kID, kRoles, kIssuer, kIntent, kScope, kTTL = key("id"), key("roles"), key("issuer"), key("intent"), key("scope"), key("ttl")
	kState, kParentChain                        = key("state"), key("parent_chain")
	kTools, kResources, kOperations             = key("tools"), key("resources"), key("operations")
	kDataClass, kEnvironments                   = key("data_class"), key("environments")
	kTool, kOperation, kResource, kArguments    = key("tool"), key("operation"), key("resource"), key("arguments")
	kJTI, kExpiresAt, kActChain, kBinding       = key("jti"), key("expires_at"), key("act_chain"), key("binding")
	kTime, kEnvironment, kGateway, kSource      = key("time"), key("environment"), key("gateway"), key("source")
	kTraceID                                    = key("trace_id")

	kToolInScope, kResourceInScope        = key("tool_in_scope"), key("resource_in_scope")
	kOperationInScope, kEnvInScope        = key("operation_in_scope"), key("environment_in_scope")
	kDataClassLevel, kCeilingLevel        = key("data_class_level"), key("ceiling_level")
	kDataClassKnown, kDelegated, kNarrows = key("data_class_known"), key("delegated"), key("narrows_parent")
	kTTLSeconds, kTTLValid                = key("ttl_seconds"), key("ttl_valid")
)

func key(s string) *ast.Term { return ast.StringTerm(s) }

// regoValue converts the input document to an AST value directly, without a
// JSON round trip. members, when not nil, names the only top-level members
// built (see regoInputMembers); version and point are always there.
func regoValue(in *Input, members map[string]bool) ast.Value {
	want := func(k string) bool { return members == nil || members[k] }
	o := ast.NewObjectWithCapacity(9)
	o.Insert(kVersion, ast.InternedTerm(in.Version))
	o.Insert(kPoint, str(string(in.Point)))
	if want("principal") {
		o.Insert(kPrincipal, obj(kID, str(in.Principal.ID), kRoles, strs(in.Principal.Roles)))
	}
	if want("agent") {
		o.Insert(kAgent, obj(kID, str(in.Agent.ID), kIssuer, str(in.Agent.Issuer)))
	}
	if want("task") {
		chain := make([]*ast.Term, len(in.Task.ParentChain))
		for i, p := range in.Task.ParentChain {
			chain[i] = obj(kID, str(p.ID), kAgent, str(p.Agent), kScope, scopeValue(&p.Scope))
		}
		o.Insert(kTask, obj(
			kID, str(in.Task.ID),
			kIntent, str(in.Task.Intent),
			kScope, scopeValue(&in.Task.Scope),
			kTTL, str(in.Task.TTL),
			kState, str(in.Task.State),
			kParentChain, ast.NewTerm(ast.NewArray(chain...))))
	}
	if a := in.Action; a != nil && want("action") {
		args := ast.NewTerm(ast.NewObject())
		if len(a.Arguments) > 0 {
			if v, err := ast.InterfaceToValue(a.Arguments); err == nil {
				args = ast.NewTerm(v)
			}
		}
		o.Insert(kAction, obj(
			kTool, str(a.Tool),
			kOperation, str(a.Operation),
			kResource, str(a.Resource),
			kArguments, args,
			kDataClass, str(a.DataClass)))
	}
	if c := in.Credential; c != nil && want("credential") {
		o.Insert(kCredential, obj(
			kJTI, str(c.JTI),
			kExpiresAt, str(timeString(c.ExpiresAt)),
			kTTL, str(c.TTL),
			kActChain, strs(c.ActChain),
			kBinding, str(c.Binding)))
	}
	if want("request") {
		o.Insert(kRequest, obj(
			kTime, str(timeString(in.Request.Time)),
			kEnvironment, str(in.Request.Environment),
			kGateway, str(in.Request.Gateway),
			kSource, str(in.Request.Source),
			kTraceID, str(in.Request.TraceID)))
	}
	if want("derived") {
		d := &in.Derived
		o.Insert(kDerived, obj(
			kToolInScope, ast.InternedTerm(d.ToolInScope),
			kResourceInScope, ast.InternedTerm(d.ResourceInScope),
			kOperationInScope, ast.InternedTerm(d.OperationInScope),
			kEnvInScope, ast.InternedTerm(d.EnvironmentInScope),
			kDataClassLevel, ast.InternedTerm(d.DataClassLevel),
			kCeilingLevel, ast.InternedTerm(d.CeilingLevel),
			kDataClassKnown, ast.InternedTerm(d.DataClassKnown),
			kDelegated, ast.InternedTerm(d.Delegated),
			kNarrows, ast.InternedTerm(d.NarrowsParent),
			kTTLSeconds, ast.InternedTerm(d.TTLSeconds),
			kTTLValid, ast.InternedTerm(d.TTLValid)))
	}
	return o
}

func scopeValue(s *Scope) *ast.Term {
	return obj(
		kTools, strs(s.Tools),
		kResources, strs(s.Resources),
		kOperations, strs(s.Operations),
		kDataClass, str(s.DataClass),
		kEnvironments, strs(s.Environments))
}

// obj builds an object term from alternating key and value terms.
func obj(kv ...*ast.Term) *ast.Term {
	o := ast.NewObjectWithCapacity(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		o.Insert(kv[i], kv[i+1])
	}
	return ast.NewTerm(o)
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
