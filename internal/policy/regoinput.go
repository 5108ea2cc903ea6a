package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputPaths names the parts of the input document a Rego bundle reads, so
// that an evaluation builds only those (as the Cedar engine prunes its
// context). A nil inputPaths means the whole document. Otherwise it maps each
// top-level member read to the set of its keys read, or to nil when the
// member is read as a whole; a member absent from the map is not built.
type inputPaths map[string]map[string]bool

// member reports whether the member name is wanted and, if only some of
// its keys are, which.
func (p inputPaths) member(name string) (keys map[string]bool, want bool) {
	if p == nil {
		return nil, true
	}
	keys, want = p[name]
	return keys, want
}

// regoInputPaths walks mods for the refs into input: input.task.scope
// wants task's scope, input["agent"] or import input.agent wants all of
// agent, and input used as a whole or indexed by a variable (input[k],
// input.task[k]) wants everything under that point. It returns nil when
// the modules may read any member.
func regoInputPaths(mods map[string]*ast.Module) inputPaths {
	paths := inputPaths{}
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
				member, ok := v[1].Value.(ast.String)
				if !ok {
					break
				}
				named++
				keys, seen := paths[string(member)]
				var k ast.String
				if len(v) > 2 {
					k, ok = v[2].Value.(ast.String)
				}
				switch {
				case len(v) == 2 || !ok:
					paths[string(member)] = nil // the whole member
				case !seen:
					paths[string(member)] = map[string]bool{string(k): true}
				case keys != nil:
					keys[string(k)] = true
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
	return paths
}

// regoHistoryPaths returns the paths the modules read under input.history
// (input.history.task.allowed gives [task allowed]; a path stops at the
// first key that is not a constant string, and input.history alone, or
// imported, is the empty path: all of it), or nil when they may read any
// of it.
func regoHistoryPaths(mods map[string]*ast.Module, paths inputPaths) [][]string {
	if paths == nil {
		return nil
	}
	read := [][]string{}
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			v, ok := t.Value.(ast.Ref)
			if !ok || len(v) < 2 || !v[0].Equal(ast.InputRootDocument) || !v[1].Equal(ast.StringTerm("history")) {
				return false
			}
			var path []string
			for _, k := range v[2:] {
				s, ok := k.Value.(ast.String)
				if !ok {
					break
				}
				path = append(path, string(s))
			}
			read = append(read, path)
			return false
		})
	}
	return read
}

// regoField is one key of a member of the input document and how to build
// its value.
type regoField struct {
	name string
	key  *ast.Term
	val  func(*Input) *ast.Term
}

// regoMember is a top-level member of the input document.
type regoMember struct {
	name    string
	key     *ast.Term
	present func(*Input) bool
	fields  []regoField
}

func always(*Input) bool { return true }

func field(name string, val func(*Input) *ast.Term) regoField {
	return regoField{name: name, key: ast.StringTerm(name), val: val}
}

// Keys and builders of the input document, made once: key terms are never
// modified, so every document shares them.
var (
	kVersion = ast.StringTerm("version")
	kPoint   = ast.StringTerm("point")

	regoMembers = []regoMember{
		{"principal", ast.StringTerm("principal"), always, []regoField{
			field("id", func(in *Input) *ast.Term { return str(in.Principal.ID) }),
			field("roles", func(in *Input) *ast.Term { return strs(in.Principal.Roles) }),
		}},
		{"agent", ast.StringTerm("agent"), always, []regoField{
			field("id", func(in *Input) *ast.Term { return str(in.Agent.ID) }),
			field("issuer", func(in *Input) *ast.Term { return str(in.Agent.Issuer) }),
		}},
		{"task", ast.StringTerm("task"), always, []regoField{
			field("id", func(in *Input) *ast.Term { return str(in.Task.ID) }),
			field("intent", func(in *Input) *ast.Term { return str(in.Task.Intent) }),
			field("scope", func(in *Input) *ast.Term { return scopeValue(&in.Task.Scope) }),
			field("ttl", func(in *Input) *ast.Term { return str(in.Task.TTL) }),
			field("state", func(in *Input) *ast.Term { return str(in.Task.State) }),
			field("parent_chain", parentChainValue),
		}},
		{"action", ast.StringTerm("action"), func(in *Input) bool { return in.Action != nil }, []regoField{
			field("tool", func(in *Input) *ast.Term { return str(in.Action.Tool) }),
			field("operation", func(in *Input) *ast.Term { return str(in.Action.Operation) }),
			field("resource", func(in *Input) *ast.Term { return str(in.Action.Resource) }),
			field("arguments", argumentsValue),
			field("data_class", func(in *Input) *ast.Term { return str(in.Action.DataClass) }),
		}},
		{"credential", ast.StringTerm("credential"), func(in *Input) bool { return in.Credential != nil }, []regoField{
			field("jti", func(in *Input) *ast.Term { return str(in.Credential.JTI) }),
			field("expires_at", func(in *Input) *ast.Term { return str(timeString(in.Credential.ExpiresAt)) }),
			field("ttl", func(in *Input) *ast.Term { return str(in.Credential.TTL) }),
			field("act_chain", func(in *Input) *ast.Term { return strs(in.Credential.ActChain) }),
			field("binding", func(in *Input) *ast.Term { return str(in.Credential.Binding) }),
		}},
		{"request", ast.StringTerm("request"), always, []regoField{
			field("time", func(in *Input) *ast.Term { return str(timeString(in.Request.Time)) }),
			field("environment", func(in *Input) *ast.Term { return str(in.Request.Environment) }),
			field("gateway", func(in *Input) *ast.Term { return str(in.Request.Gateway) }),
			field("source", func(in *Input) *ast.Term { return str(in.Request.Source) }),
			field("trace_id", func(in *Input) *ast.Term { return str(in.Request.TraceID) }),
		}},
		// Built by the bundle's historyPlan, not field by field.
		{"history", ast.StringTerm("history"), always, nil},
		{"derived", ast.StringTerm("derived"), always, []regoField{
			field("tool_in_scope", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.ToolInScope) }),
			field("resource_in_scope", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.ResourceInScope) }),
			field("operation_in_scope", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.OperationInScope) }),
			field("environment_in_scope", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.EnvironmentInScope) }),
			field("data_class_level", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.DataClassLevel) }),
			field("ceiling_level", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.CeilingLevel) }),
			field("data_class_known", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.DataClassKnown) }),
			field("delegated", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.Delegated) }),
			field("narrows_parent", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.NarrowsParent) }),
			field("ttl_seconds", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.TTLSeconds) }),
			field("ttl_valid", func(in *Input) *ast.Term { return ast.InternedTerm(in.Derived.TTLValid) }),
		}},
	}

	kID, kAgent, kScope                             = ast.StringTerm("id"), ast.StringTerm("agent"), ast.StringTerm("scope")
	kTools, kResources, kOperations                 = ast.StringTerm("tools"), ast.StringTerm("resources"), ast.StringTerm("operations")
	kDataClass, kEnvironments                       = ast.StringTerm("data_class"), ast.StringTerm("environments")
	kLimits, kCalls, kPerTool, kPerMinute           = ast.StringTerm("limits"), ast.StringTerm("calls"), ast.StringTerm("per_tool"), ast.StringTerm("per_minute")
	kAllowed, kDenied, kInFlight                    = ast.StringTerm("allowed"), ast.StringTerm("denied"), ast.StringTerm("in_flight")
	kLastMinute, kLastHour                          = ast.StringTerm("last_minute"), ast.StringTerm("last_hour")
	kTaskTools, kTaskOperations                     = ast.StringTerm("tools"), ast.StringTerm("operations")
	kMaxDataClass, kMaxDataClassLevel               = ast.StringTerm("max_data_class"), ast.StringTerm("max_data_class_level")
	kReached, kDestinations                         = ast.StringTerm("reached"), ast.StringTerm("destinations")
	kResourceReached, kDestinationReached           = ast.StringTerm("resource_reached"), ast.StringTerm("destination_reached")
	kHeld, kSpent, kPending                         = ast.StringTerm("held"), ast.StringTerm("spent"), ast.StringTerm("pending")
	emptyObject                           *ast.Term = ast.ObjectTerm()
)

// regoValue converts the input document to an AST value directly, without a
// JSON round trip, building only what paths names (nil: everything);
// version and point are always there. hist builds the parts of the history
// the bundle reads (nil: all of it). cache, when not nil, supplies the
// derived object for derived facts seen recently, and tasks the task
// object of a task whose latest call built it.
func regoValue(in *Input, paths inputPaths, hist *historyPlan, cache *derivedCache[*ast.Term], tasks *taskCache[*ast.Term]) ast.Value {
	n := len(regoMembers)
	if paths != nil {
		n = len(paths)
	}
	// An exact capacity matters: Go maps of up to 8 entries, which back
	// small objects, take one allocation; larger ones take several.
	o := ast.NewObjectWithCapacity(2 + min(n, len(regoMembers)))
	o.Insert(kVersion, ast.InternedTerm(in.Version))
	o.Insert(kPoint, str(string(in.Point)))
	for i := range regoMembers {
		m := &regoMembers[i]
		keys, want := paths.member(m.name)
		if !want || !m.present(in) {
			continue
		}
		if m.name == "history" {
			o.Insert(m.key, hist.regoValueOf(in))
			continue
		}
		if m.name == "task" {
			t, ok := tasks.lookup(&in.Task)
			if !ok {
				t = m.build(in, keys)
				tasks.store(&in.Task, t)
			}
			o.Insert(m.key, t)
			continue
		}
		if m.name != "derived" {
			o.Insert(m.key, m.build(in, keys))
			continue
		}
		t, ok := cache.lookup(&in.Derived)
		if !ok {
			t = m.build(in, keys)
			cache.store(&in.Derived, t)
		}
		o.Insert(m.key, t)
	}
	return o
}

// build makes the member's object from in, with only keys (nil: all).
func (m *regoMember) build(in *Input, keys map[string]bool) *ast.Term {
	n := len(m.fields)
	if keys != nil {
		n = min(n, len(keys))
	}
	o := ast.NewObjectWithCapacity(n)
	for _, f := range m.fields {
		if keys == nil || keys[f.name] {
			o.Insert(f.key, f.val(in))
		}
	}
	return ast.NewTerm(o)
}

func parentChainValue(in *Input) *ast.Term {
	chain := make([]*ast.Term, len(in.Task.ParentChain))
	for i := range in.Task.ParentChain {
		p := &in.Task.ParentChain[i]
		chain[i] = obj(kID, str(p.ID), kAgent, str(p.Agent), kScope, scopeValue(&p.Scope))
	}
	return ast.NewTerm(ast.NewArray(chain...))
}

// argumentsValue converts the tool arguments; arguments that cannot be
// represented (which ParseInput never produces) are an empty object.
func argumentsValue(in *Input) *ast.Term {
	if len(in.Action.Arguments) == 0 {
		return emptyObject
	}
	v, err := ast.InterfaceToValue(in.Action.Arguments)
	if err != nil {
		return emptyObject
	}
	return ast.NewTerm(v)
}

func scopeValue(s *Scope) *ast.Term {
	if s.Limits != nil {
		return obj(
			kTools, strs(s.Tools),
			kResources, strs(s.Resources),
			kOperations, strs(s.Operations),
			kDataClass, str(s.DataClass),
			kEnvironments, strs(s.Environments),
			kLimits, limitsValue(s.Limits))
	}
	return obj(
		kTools, strs(s.Tools),
		kResources, strs(s.Resources),
		kOperations, strs(s.Operations),
		kDataClass, str(s.DataClass),
		kEnvironments, strs(s.Environments))
}

// limitsValue is a scope's limits, with only the limits it sets.
func limitsValue(l *Limits) *ast.Term {
	o := ast.NewObjectWithCapacity(3)
	if l.Calls != nil {
		o.Insert(kCalls, ast.InternedTerm(*l.Calls))
	}
	if len(l.PerTool) > 0 {
		pt := ast.NewObjectWithCapacity(len(l.PerTool))
		for tool, n := range l.PerTool {
			pt.Insert(ast.InternedTerm(tool), ast.InternedTerm(n))
		}
		o.Insert(kPerTool, ast.NewTerm(pt))
	}
	if l.PerMinute != nil {
		o.Insert(kPerMinute, ast.InternedTerm(*l.PerMinute))
	}
	return ast.NewTerm(o)
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
