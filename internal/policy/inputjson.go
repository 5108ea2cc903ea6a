package policy

import (
	"maps"
	"slices"
	"strconv"

	"github.com/writhq/writ/internal/jsonappend"
)

// MarshalInput returns in as JSON, byte for byte what encoding/json writes
// for it, without reflection: the input of every decision is recorded,
// on the cores that decide. TestMarshalInputIsEncodingJSON holds the two
// equal for every field; like encoding/json, it fails for a time outside
// RFC 3339's years.
func MarshalInput(in *Input) ([]byte, error) {
	return in.appendJSON(make([]byte, 0, 2048))
}

func (in *Input) appendJSON(b []byte) ([]byte, error) {
	w := jsonappend.Object{B: b}
	w.Int("version", in.Version)
	w.Str("point", string(in.Point))
	w.B = in.Principal.appendJSON(w.Key("principal"))
	w.B = in.Agent.appendJSON(w.Key("agent"))
	w.B = in.Task.appendJSON(w.Key("task"))
	var err error
	if a := in.Action; a != nil {
		if w.B, err = a.appendJSON(w.Key("action")); err != nil {
			return nil, err
		}
	}
	if c := in.Credential; c != nil {
		if w.B, err = c.appendJSON(w.Key("credential")); err != nil {
			return nil, err
		}
	}
	if w.B, err = in.Request.appendJSON(w.Key("request")); err != nil {
		return nil, err
	}
	if h := in.History; h != nil {
		w.B = h.appendJSON(w.Key("history"))
	}
	w.B = in.Derived.appendJSON(w.Key("derived"))
	return w.End(), nil
}

func (p *Principal) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("id", p.ID)
	w.OptStrings("roles", p.Roles)
	return w.End()
}

func (a *Agent) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("id", a.ID)
	w.OptStr("issuer", a.Issuer)
	return w.End()
}

func (s *Scope) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Strings("tools", s.Tools)
	w.Strings("resources", s.Resources)
	w.Strings("operations", s.Operations)
	w.Str("data_class", s.DataClass)
	w.Strings("environments", s.Environments)
	if l := s.Limits; l != nil {
		w.B = appendLimits(w.Key("limits"), l)
	}
	return w.End()
}

func appendLimits(b []byte, l *Limits) []byte {
	w := jsonappend.Object{B: b}
	if l.Calls != nil {
		w.I64("calls", *l.Calls)
	}
	if len(l.PerTool) > 0 {
		b := append(w.Key("per_tool"), '{')
		for i, k := range slices.Sorted(maps.Keys(l.PerTool)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(jsonappend.String(b, k), ':'), l.PerTool[k], 10)
		}
		w.B = append(b, '}')
	}
	if l.PerMinute != nil {
		w.I64("per_minute", *l.PerMinute)
	}
	return w.End()
}

func (t *Task) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Str("id", t.ID)
	w.OptStr("intent", t.Intent)
	w.B = t.Scope.appendJSON(w.Key("scope"))
	w.OptStr("ttl", t.TTL)
	w.OptStr("state", t.State)
	if len(t.ParentChain) > 0 {
		w.B = jsonappend.Array(w.Key("parent_chain"), len(t.ParentChain), func(b []byte, i int) []byte {
			p := &t.ParentChain[i]
			pw := jsonappend.Object{B: b}
			pw.Str("id", p.ID)
			pw.OptStr("agent", p.Agent)
			pw.B = p.Scope.appendJSON(pw.Key("scope"))
			return pw.End()
		})
	}
	return w.End()
}

func (a *Action) appendJSON(b []byte) ([]byte, error) {
	w := jsonappend.Object{B: b}
	w.Str("tool", a.Tool)
	w.OptStr("operation", a.Operation)
	w.OptStr("resource", a.Resource)
	if len(a.Arguments) > 0 {
		var err error
		if w.B, err = jsonappend.MapErr(w.Key("arguments"), a.Arguments); err != nil {
			return nil, err
		}
	}
	w.OptStr("data_class", a.DataClass)
	return w.End(), nil
}

func (c *Credential) appendJSON(b []byte) ([]byte, error) {
	w := jsonappend.Object{B: b}
	w.OptStr("jti", c.JTI)
	if !c.ExpiresAt.IsZero() {
		var err error
		if w.B, err = jsonappend.Time(w.Key("expires_at"), c.ExpiresAt); err != nil {
			return nil, err
		}
	}
	w.OptStr("ttl", c.TTL)
	w.OptStrings("act_chain", c.ActChain)
	w.OptStr("binding", c.Binding)
	return w.End(), nil
}

func (r *Request) appendJSON(b []byte) ([]byte, error) {
	w := jsonappend.Object{B: b}
	if !r.Time.IsZero() {
		var err error
		if w.B, err = jsonappend.Time(w.Key("time"), r.Time); err != nil {
			return nil, err
		}
	}
	w.Str("environment", r.Environment)
	w.OptStr("gateway", r.Gateway)
	w.OptStr("source", r.Source)
	w.OptStr("trace_id", r.TraceID)
	return w.End(), nil
}

func (h *History) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Int("version", h.Version)
	t := &h.Task
	tw := jsonappend.Object{B: w.Key("task")}
	t.Calls.members(&tw)
	tw.I64("tools", t.Tools)
	tw.I64("operations", t.Operations)
	tw.Str("max_data_class", t.MaxDataClass)
	tw.Int("max_data_class_level", t.MaxDataClassLevel)
	tw.B = t.LastMinute.appendJSON(tw.Key("last_minute"))
	tw.B = t.LastHour.appendJSON(tw.Key("last_hour"))
	w.B = tw.End()
	w.B = h.Tool.appendJSON(w.Key("tool"))
	w.B = h.Operation.appendJSON(w.Key("operation"))
	aw := jsonappend.Object{B: w.Key("agent")}
	aw.B = h.Agent.LastMinute.appendJSON(aw.Key("last_minute"))
	aw.B = h.Agent.LastHour.appendJSON(aw.Key("last_hour"))
	w.B = aw.End()
	r := &h.Resources
	rw := jsonappend.Object{B: w.Key("resources")}
	rw.I64("reached", r.Reached)
	rw.I64("destinations", r.Destinations)
	rw.Bool("resource_reached", r.ResourceReached)
	rw.Bool("destination_reached", r.DestinationReached)
	w.B = rw.End()
	p := &h.Approvals
	pw := jsonappend.Object{B: w.Key("approvals")}
	pw.I64("held", p.Held)
	pw.I64("spent", p.Spent)
	pw.I64("pending", p.Pending)
	pw.I64("denied", p.Denied)
	w.B = pw.End()
	return w.End()
}

func (c *Calls) members(w *jsonappend.Object) {
	w.I64("allowed", c.Allowed)
	w.I64("denied", c.Denied)
	w.I64("in_flight", c.InFlight)
}

func (c *Calls) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	c.members(&w)
	return w.End()
}

func (v *Window) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.I64("calls", v.Calls)
	w.I64("allowed", v.Allowed)
	w.I64("denied", v.Denied)
	return w.End()
}

func (d *Derived) appendJSON(b []byte) []byte {
	w := jsonappend.Object{B: b}
	w.Bool("tool_in_scope", d.ToolInScope)
	w.Bool("resource_in_scope", d.ResourceInScope)
	w.Bool("operation_in_scope", d.OperationInScope)
	w.Bool("environment_in_scope", d.EnvironmentInScope)
	w.Int("data_class_level", d.DataClassLevel)
	w.Int("ceiling_level", d.CeilingLevel)
	w.Bool("data_class_known", d.DataClassKnown)
	w.Bool("delegated", d.Delegated)
	w.Bool("narrows_parent", d.NarrowsParent)
	w.I64("ttl_seconds", d.TTLSeconds)
	w.Bool("ttl_valid", d.TTLValid)
	return w.End()
}
