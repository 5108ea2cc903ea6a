package policy

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// cedarRequest maps the input document onto a Cedar request:
//
//	principal  Agent::"<agent.id>"
//	action     Action::"<point>"
//	resource   Tool::"<action.tool>" at the action and list points,
//	           Task::"<task.id>" at the task and exchange points
//	context    the whole input document (point, principal, agent, task,
//	           action, credential, request, history, derived) as a record
func cedarRequest(in *Input, members cedarMembers, hist *historyPlan, actions *actionCache, cache *derivedCache[types.Value]) types.Request {
	res := types.NewEntityUID(cedarTaskType, types.String(in.Task.ID))
	if (in.Point == PointAction || in.Point == PointList) && in.Action != nil {
		res = types.NewEntityUID(cedarToolType, types.String(in.Action.Tool))
	}
	return types.Request{
		Principal: types.NewEntityUID(cedarAgentType, types.String(in.Agent.ID)),
		Action:    types.NewEntityUID(cedarActionType, types.String(in.Point)),
		Resource:  res,
		Context:   cedarContext(in, members, hist, actions, cache),
	}
}

// cedarContext builds the context record. members, when not nil, names the
// only members the bundle's policies read, and of each the keys they read;
// the others are left out, which saves most of the allocations of a
// decision (a Cedar record is copied and hashed, key by key, when made).
// hist builds the parts of the history they read. cache, when not nil,
// supplies the derived record for derived facts seen recently.
func cedarContext(in *Input, members cedarMembers, hist *historyPlan, actions *actionCache, cache *derivedCache[types.Value]) types.Record {
	// An exact capacity keeps a small map to one allocation.
	n := 10
	if members != nil {
		n = min(n, 2+len(members))
	}
	m := make(types.RecordMap, n)
	m["version"] = types.Long(in.Version)
	m["point"] = types.String(in.Point)
	if keys, ok := members.member("principal"); ok {
		m["principal"] = record(keys, types.RecordMap{
			"id": types.String(in.Principal.ID), "roles": cedarStrings(in.Principal.Roles),
		})
	}
	if keys, ok := members.member("agent"); ok {
		m["agent"] = record(keys, types.RecordMap{
			"id": types.String(in.Agent.ID), "issuer": types.String(in.Agent.Issuer),
		})
	}
	if keys, ok := members.member("task"); ok {
		t := types.RecordMap{
			"id":     types.String(in.Task.ID),
			"intent": types.String(in.Task.Intent),
			"ttl":    types.String(in.Task.TTL),
			"state":  types.String(in.Task.State),
		}
		if keys == nil || keys["scope"] {
			t["scope"] = cedarScope(&in.Task.Scope)
		}
		if keys == nil || keys["parent_chain"] {
			chain := make([]types.Value, len(in.Task.ParentChain))
			for i, p := range in.Task.ParentChain {
				chain[i] = types.NewRecord(types.RecordMap{
					"id": types.String(p.ID), "agent": types.String(p.Agent), "scope": cedarScope(&p.Scope),
				})
			}
			t["parent_chain"] = types.NewSet(chain...)
		}
		m["task"] = record(keys, t)
	}
	if keys, ok := members.member("action"); ok {
		m["action"] = cedarAction(in.Action, keys, actions)
	}
	if keys, ok := members.member("credential"); ok {
		cred := types.RecordMap{
			"jti": types.String(""), "expires_at": types.String(""), "ttl": types.String(""),
			"act_chain": types.NewSet(), "binding": types.String(""),
		}
		if c := in.Credential; c != nil {
			cred["jti"] = types.String(c.JTI)
			cred["expires_at"] = types.String(timeString(c.ExpiresAt))
			cred["ttl"] = types.String(c.TTL)
			cred["act_chain"] = cedarStrings(c.ActChain)
			cred["binding"] = types.String(c.Binding)
		}
		m["credential"] = record(keys, cred)
	}
	if keys, ok := members.member("request"); ok {
		want := func(k string) bool { return keys == nil || keys[k] }
		r := &in.Request
		req := make(types.RecordMap, 5)
		if want("time") {
			req["time"] = types.String(timeString(r.Time))
		}
		if want("environment") {
			req["environment"] = types.String(r.Environment)
		}
		if want("gateway") {
			req["gateway"] = types.String(r.Gateway)
		}
		if want("source") {
			req["source"] = types.String(r.Source)
		}
		if want("trace_id") {
			req["trace_id"] = types.String(r.TraceID)
		}
		m["request"] = types.NewRecord(req)
	}
	if _, ok := members.member("history"); ok {
		m["history"] = hist.cedarValueOf(in)
	}
	if _, ok := members.member("derived"); ok {
		v, ok := cache.lookup(&in.Derived)
		if !ok {
			v = cedarDerived(&in.Derived)
			cache.store(&in.Derived, v)
		}
		m["derived"] = v
	}
	return types.NewRecord(m)
}

var emptyRecord = types.NewRecord(nil)

// cedarAction builds the action record with only keys (nil: all of it).
// One without arguments read is kept in actions by its other values: a
// bundle that reads the operation sees a handful of them.
func cedarAction(in *Action, keys map[string]bool, actions *actionCache) types.Value {
	want := func(k string) bool { return keys == nil || keys[k] }
	var a Action
	if in != nil {
		a = *in
	}
	build := func() types.Value {
		// Only the keys read are made: each value is an allocation.
		action := make(types.RecordMap, 5)
		if want("tool") {
			action["tool"] = types.String(a.Tool)
		}
		if want("operation") {
			action["operation"] = types.String(a.Operation)
		}
		if want("resource") {
			action["resource"] = types.String(a.Resource)
		}
		if want("data_class") {
			action["data_class"] = types.String(a.DataClass)
		}
		if want("arguments") {
			action["arguments"] = emptyRecord
			if len(a.Arguments) > 0 {
				action["arguments"] = cedarValue(map[string]any(a.Arguments), 0)
			}
		}
		return types.NewRecord(action)
	}
	if actions == nil || want("arguments") {
		return build()
	}
	var k actionKey
	if want("tool") {
		k.tool = a.Tool
	}
	if want("operation") {
		k.operation = a.Operation
	}
	if want("resource") {
		k.resource = a.Resource
	}
	if want("data_class") {
		k.dataClass = a.DataClass
	}
	return actions.get(&k, build)
}

// actionKey is the values an action record without arguments is built
// from.
type actionKey struct{ tool, operation, resource, dataClass string }

// actionCache keeps action records by their values, as historyCache
// does.
type actionCache = slotCache[actionKey, types.Value]

func (k actionKey) slotHash() uint64 {
	h := uint64(fnvOffset)
	for _, s := range [...]string{k.tool, k.operation, k.resource, k.dataClass} {
		for i := 0; i < len(s); i++ {
			h = fnv64(h, uint64(s[i]))
		}
		h = fnv64(h, 0xff)
	}
	return h
}

func (k actionKey) sameAs(o actionKey) bool { return k == o }

func (k actionKey) kept() actionKey { return k }

// cedarMembers names the context members a bundle's policies read and, of
// each, the keys (nil: the whole member). A nil cedarMembers means the
// whole context.
type cedarMembers map[string]map[string]bool

// member reports whether the member name is read and, if only some of its
// keys are, which.
func (c cedarMembers) member(name string) (keys map[string]bool, read bool) {
	if c == nil {
		return nil, true
	}
	keys, read = c[name]
	return keys, read
}

// record makes a record of m with only keys (nil: all of m).
func record(keys map[string]bool, m types.RecordMap) types.Record {
	if keys != nil {
		for k := range m {
			if !keys[string(k)] {
				delete(m, k)
			}
		}
	}
	return types.NewRecord(m)
}

func cedarDerived(d *Derived) types.Value {
	return types.NewRecord(types.RecordMap{
		"tool_in_scope":        types.Boolean(d.ToolInScope),
		"resource_in_scope":    types.Boolean(d.ResourceInScope),
		"operation_in_scope":   types.Boolean(d.OperationInScope),
		"environment_in_scope": types.Boolean(d.EnvironmentInScope),
		"data_class_level":     types.Long(d.DataClassLevel),
		"ceiling_level":        types.Long(d.CeilingLevel),
		"data_class_known":     types.Boolean(d.DataClassKnown),
		"delegated":            types.Boolean(d.Delegated),
		"narrows_parent":       types.Boolean(d.NarrowsParent),
		"ttl_seconds":          types.Long(d.TTLSeconds),
		"ttl_valid":            types.Boolean(d.TTLValid),
	})
}

// contextMembers adds to set the context members policy p reads, with the
// keys of each it reads (context.x.y, context["x"].y, context.x has y; a
// member read as a whole, context.x alone, has nil keys), and to hist the
// paths it reads under context.history (context.history alone is the empty
// path). It reports false when p uses the context record some other way,
// so that all of it must be built.
func contextMembers(p *cedar.Policy, set cedarMembers, hist *[][]string) bool {
	b, err := p.MarshalJSON()
	if err != nil {
		return false
	}
	var tree any
	if json.Unmarshal(b, &tree) != nil {
		return false
	}
	return walkContext(tree, set, hist)
}

func walkContext(n any, set cedarMembers, hist *[][]string) bool {
	switch t := n.(type) {
	case map[string]any:
		if v, ok := t["Var"]; ok && v == "context" {
			return false // the whole record is used
		}
		for k, v := range t {
			if k == "." || k == "has" {
				if chain, ok := attrChain(v); ok {
					noteChain(set, hist, chain)
					continue
				}
			}
			if !walkContext(v, set, hist) {
				return false
			}
		}
	case []any:
		for _, v := range t {
			if !walkContext(v, set, hist) {
				return false
			}
		}
	}
	return true
}

// noteChain records an access context.chain[0].chain[1]…
func noteChain(set cedarMembers, hist *[][]string, chain []string) {
	member := chain[0]
	if member == "history" {
		*hist = append(*hist, chain[1:])
	}
	keys, seen := set[member]
	switch {
	case len(chain) == 1:
		set[member] = nil
	case !seen:
		set[member] = map[string]bool{chain[1]: true}
	case keys != nil:
		keys[chain[1]] = true
	}
}

// attrChain reads an access {left, attr} down to the context variable:
// context.a.b gives [a b]; false when it does not start at context.
func attrChain(op any) ([]string, bool) {
	var chain []string
	for {
		m, ok := op.(map[string]any)
		if !ok {
			return nil, false
		}
		attr, ok := m["attr"].(string)
		if !ok {
			return nil, false
		}
		chain = append(chain, attr)
		left, ok := m["left"].(map[string]any)
		if !ok {
			return nil, false
		}
		if left["Var"] == "context" {
			slices.Reverse(chain)
			return chain, true
		}
		if op, ok = left["."]; !ok {
			return nil, false
		}
	}
}

func cedarScope(s *Scope) types.Record {
	m := types.RecordMap{
		"tools":        cedarStrings(s.Tools),
		"resources":    cedarStrings(s.Resources),
		"operations":   cedarStrings(s.Operations),
		"data_class":   types.String(s.DataClass),
		"environments": cedarStrings(s.Environments),
	}
	if l := s.Limits; l != nil {
		lm := types.RecordMap{}
		if l.Calls != nil {
			lm["calls"] = types.Long(*l.Calls)
		}
		if len(l.PerTool) > 0 {
			pt := make(types.RecordMap, len(l.PerTool))
			for tool, n := range l.PerTool {
				pt[types.String(tool)] = types.Long(n)
			}
			lm["per_tool"] = types.NewRecord(pt)
		}
		if l.PerMinute != nil {
			lm["per_minute"] = types.Long(*l.PerMinute)
		}
		m["limits"] = types.NewRecord(lm)
	}
	return types.NewRecord(m)
}

func cedarStrings(l []string) types.Set {
	vs := make([]types.Value, len(l))
	for i, s := range l {
		vs[i] = types.String(s)
	}
	return types.NewSet(vs...)
}

// maxCedarDepth bounds the nesting of tool arguments carried into Cedar.
const maxCedarDepth = 32

// cedarValue converts a JSON value (as decoded by encoding/json) to Cedar.
// Cedar has no null and no floating point: null members are dropped, whole
// numbers within int64 become Long, other numbers become their decimal text
// as a String, arrays become Sets (order and duplicates are lost).
func cedarValue(v any, depth int) types.Value {
	if depth > maxCedarDepth {
		return types.String("")
	}
	switch t := v.(type) {
	case string:
		return types.String(t)
	case bool:
		return types.Boolean(t)
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return types.Long(n)
		}
		return types.String(t.String())
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<62 {
			return types.Long(int64(t))
		}
		return types.String(strconv.FormatFloat(t, 'g', -1, 64))
	case int:
		return types.Long(t)
	case int64:
		return types.Long(t)
	case map[string]any:
		m := make(types.RecordMap, len(t))
		for k, x := range t {
			if x == nil {
				continue
			}
			m[types.String(k)] = cedarValue(x, depth+1)
		}
		return types.NewRecord(m)
	case []any:
		vs := make([]types.Value, 0, len(t))
		for _, x := range t {
			if x != nil {
				vs = append(vs, cedarValue(x, depth+1))
			}
		}
		return types.NewSet(vs...)
	}
	return types.String("")
}
