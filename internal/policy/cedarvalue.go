package policy

import (
	"encoding/json"
	"math"
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
func cedarRequest(in *Input, members map[string]bool, cache *derivedCache[types.Value]) types.Request {
	res := types.NewEntityUID(cedarTaskType, types.String(in.Task.ID))
	if (in.Point == PointAction || in.Point == PointList) && in.Action != nil {
		res = types.NewEntityUID(cedarToolType, types.String(in.Action.Tool))
	}
	return types.Request{
		Principal: types.NewEntityUID(cedarAgentType, types.String(in.Agent.ID)),
		Action:    types.NewEntityUID(cedarActionType, types.String(in.Point)),
		Resource:  res,
		Context:   cedarContext(in, members, cache),
	}
}

// cedarContext builds the context record. members, when not nil, names the
// only top-level members the bundle's policies read; the others are left
// out, which saves most of the allocations of a decision. cache, when not
// nil, supplies the derived record for derived facts seen recently.
func cedarContext(in *Input, members map[string]bool, cache *derivedCache[types.Value]) types.Record {
	want := func(k string) bool { return members == nil || members[k] }
	// An exact capacity keeps a small map to one allocation.
	n := 10
	if members != nil {
		n = min(n, 2+len(members))
	}
	m := make(types.RecordMap, n)
	m["version"] = types.Long(in.Version)
	m["point"] = types.String(in.Point)
	if want("principal") {
		m["principal"] = types.NewRecord(types.RecordMap{
			"id": types.String(in.Principal.ID), "roles": cedarStrings(in.Principal.Roles),
		})
	}
	if want("agent") {
		m["agent"] = types.NewRecord(types.RecordMap{
			"id": types.String(in.Agent.ID), "issuer": types.String(in.Agent.Issuer),
		})
	}
	if want("task") {
		chain := make([]types.Value, len(in.Task.ParentChain))
		for i, p := range in.Task.ParentChain {
			chain[i] = types.NewRecord(types.RecordMap{
				"id": types.String(p.ID), "agent": types.String(p.Agent), "scope": cedarScope(&p.Scope),
			})
		}
		m["task"] = types.NewRecord(types.RecordMap{
			"id":           types.String(in.Task.ID),
			"intent":       types.String(in.Task.Intent),
			"scope":        cedarScope(&in.Task.Scope),
			"ttl":          types.String(in.Task.TTL),
			"state":        types.String(in.Task.State),
			"parent_chain": types.NewSet(chain...),
		})
	}
	if want("action") {
		action := types.RecordMap{
			"tool": types.String(""), "operation": types.String(""), "resource": types.String(""),
			"data_class": types.String(""), "arguments": types.NewRecord(nil),
		}
		if a := in.Action; a != nil {
			action["tool"] = types.String(a.Tool)
			action["operation"] = types.String(a.Operation)
			action["resource"] = types.String(a.Resource)
			action["data_class"] = types.String(a.DataClass)
			if len(a.Arguments) > 0 {
				action["arguments"] = cedarValue(map[string]any(a.Arguments), 0)
			}
		}
		m["action"] = types.NewRecord(action)
	}
	if want("credential") {
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
		m["credential"] = types.NewRecord(cred)
	}
	if want("request") {
		m["request"] = types.NewRecord(types.RecordMap{
			"time":        types.String(timeString(in.Request.Time)),
			"environment": types.String(in.Request.Environment),
			"gateway":     types.String(in.Request.Gateway),
			"source":      types.String(in.Request.Source),
			"trace_id":    types.String(in.Request.TraceID),
		})
	}
	if want("history") {
		m["history"] = cedarHistory(history(in))
	}
	if want("derived") {
		v, ok := cache.lookup(&in.Derived)
		if !ok {
			v = cedarDerived(&in.Derived)
			cache.store(&in.Derived, v)
		}
		m["derived"] = v
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

// contextMembers adds to set the top-level context members policy p reads
// (context.x, context["x"], context has x) and reports false when p uses the
// context record some other way, so that all of it must be built.
func contextMembers(p *cedar.Policy, set map[string]bool) bool {
	b, err := p.MarshalJSON()
	if err != nil {
		return false
	}
	var tree any
	if json.Unmarshal(b, &tree) != nil {
		return false
	}
	return walkContext(tree, set)
}

func walkContext(n any, set map[string]bool) bool {
	switch t := n.(type) {
	case map[string]any:
		if v, ok := t["Var"]; ok && v == "context" {
			return false // the whole record is used
		}
		for k, v := range t {
			if k == "." || k == "has" {
				if op, ok := v.(map[string]any); ok {
					if left, ok := op["left"].(map[string]any); ok && left["Var"] == "context" {
						attr, ok := op["attr"].(string)
						if !ok {
							return false
						}
						set[attr] = true
						continue
					}
				}
			}
			if !walkContext(v, set) {
				return false
			}
		}
	case []any:
		for _, v := range t {
			if !walkContext(v, set) {
				return false
			}
		}
	}
	return true
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

// cedarHistory is the history record: the same facts, under the same
// names, as the Rego input's history object.
func cedarHistory(h *History) types.Record {
	t := &h.Task
	return types.NewRecord(types.RecordMap{
		"version": types.Long(h.Version),
		"task": types.NewRecord(types.RecordMap{
			"allowed": types.Long(t.Allowed), "denied": types.Long(t.Denied), "in_flight": types.Long(t.InFlight),
			"tools": types.Long(t.Tools), "operations": types.Long(t.Operations),
			"max_data_class": types.String(t.MaxDataClass), "max_data_class_level": types.Long(t.MaxDataClassLevel),
			"last_minute": cedarWindow(&t.LastMinute), "last_hour": cedarWindow(&t.LastHour),
		}),
		"tool":      cedarCalls(&h.Tool),
		"operation": cedarCalls(&h.Operation),
		"agent": types.NewRecord(types.RecordMap{
			"last_minute": cedarWindow(&h.Agent.LastMinute), "last_hour": cedarWindow(&h.Agent.LastHour),
		}),
		"resources": types.NewRecord(types.RecordMap{
			"reached": types.Long(h.Resources.Reached), "destinations": types.Long(h.Resources.Destinations),
			"resource_reached":    types.Boolean(h.Resources.ResourceReached),
			"destination_reached": types.Boolean(h.Resources.DestinationReached),
		}),
		"approvals": types.NewRecord(types.RecordMap{
			"held": types.Long(h.Approvals.Held), "spent": types.Long(h.Approvals.Spent),
			"pending": types.Long(h.Approvals.Pending), "denied": types.Long(h.Approvals.Denied),
		}),
	})
}

func cedarCalls(c *Calls) types.Record {
	return types.NewRecord(types.RecordMap{
		"allowed": types.Long(c.Allowed), "denied": types.Long(c.Denied), "in_flight": types.Long(c.InFlight),
	})
}

func cedarWindow(w *Window) types.Record {
	return types.NewRecord(types.RecordMap{
		"calls": types.Long(w.Calls), "allowed": types.Long(w.Allowed), "denied": types.Long(w.Denied),
	})
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
