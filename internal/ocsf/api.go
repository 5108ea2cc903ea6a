package ocsf

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// apiActivity maps the events that are API Activity: the decisions on
// tool calls, their results, hidden tools, refused credentials (the
// records of a bundle), and the task and exchange decisions, shadow
// disagreements and witness refusals.
func (m *Mapper) apiActivity(e ledger.Entry) (Record, bool) {
	if InBundle(e.Event.Type) {
		return m.callRecord(e)
	}
	ev := e.Event
	data, _ := event.Read(ev)
	var r Record
	switch d := data.(type) {
	case event.PolicyDecided:
		m.base(&r, e, classAPIActivity, 99, "Other")
		r.setStatus(statusSuccess)
		r.setSeverity(sevInformational)
		r.Message = strings.Join(d.Reasons, "; ")
		r.Actor = agentActor(ev, []Authorization{m.decision(d.Effect, ev.PolicyVersion)})
		r.API = &API{Operation: "policy." + d.Point, Service: map[string]any{"name": "policy"}}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["engine"] = d.Engine
	case event.ShadowDisagreed:
		m.base(&r, e, classAPIActivity, 99, "Other")
		r.setStatus(statusSuccess)
		r.setSeverity(sevLow)
		r.Message = fmt.Sprintf("the candidate policy decided %s where the active one decided %s", d.Candidate.Effect, d.Active.Effect)
		r.Actor = agentActor(ev, []Authorization{m.decision(d.Active.Effect, d.Active.Version), m.decision(d.Candidate.Effect, d.Candidate.Version)})
		r.API = &API{Operation: "policy." + d.Point, Service: map[string]any{"name": "policy"}}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["candidate_engine"] = d.Candidate.Engine
	case event.WitnessRefused:
		m.base(&r, e, classAPIActivity, 1, "Create")
		r.setStatus(statusFailure)
		r.setSeverity(sevHigh)
		r.StatusDetail, r.Message = d.Reason, d.Detail
		r.Actor = &Actor{AppName: "writ"}
		r.API = &API{Operation: "add-checkpoint", Service: map[string]any{"name": "witness"}}
		r.Resources = []Resource{{UID: d.URL, Type: "witness"}}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["witness"], r.Unmapped["witness_key"], r.Unmapped["checkpoint_size"] = d.Witness, d.Key, d.CheckpointSize
		if d.Status != 0 {
			r.Unmapped["http_status"] = d.Status
		}
		if d.WitnessSize != nil {
			r.Unmapped["witness_size"] = *d.WitnessSize
		}
	default:
		return r, false
	}
	return r, true
}

// callRecord is the record a bundle carries: one per decision on a call
// (authorized or denied), per recorded result, per listing that hid
// tools, and per refused token. A result's call is the one the mapper
// saw authorized under its action ID, if it did.
func (m *Mapper) callRecord(e ledger.Entry) (Record, bool) {
	ev := e.Event
	// Data that does not fit its type maps as far as it decoded.
	var data any
	switch ev.Type {
	case ledger.TypeActionAuthorized, ledger.TypeActionDenied:
		d := new(decided)
		readCall(ev.Data, d)
		data = d
	case ledger.TypeActionCompleted:
		d := new(completed)
		readCall(ev.Data, d)
		data = d
	default:
		data, _ = event.Read(ev)
	}
	var r Record
	var a call
	actionID := ""
	switch d := data.(type) {
	case *decided:
		a = call{tool: d.Tool, op: d.Operation, resource: d.Resource, class: d.DataClass, pv: ev.PolicyVersion, decision: "allow"}
		r.setStatus(statusSuccess)
		if ev.Type == ledger.TypeActionDenied {
			a.decision = "deny"
			r.setStatus(statusFailure)
			r.StatusDetail = cmp.Or(d.Refused, d.Effect)
		} else {
			m.calls.add(d.ActionID, a)
		}
		r.Message = strings.Join(d.Reasons, "; ")
		actionID = d.ActionID
	case *completed:
		var ok bool
		if a, ok = m.calls.get(d.ActionID); !ok {
			// A call the mapper did not see authorized (it began
			// later, or forgot it): the completion names its tool and
			// operation, when it was recorded with them.
			a = call{tool: d.Tool, op: d.Operation}
		}
		r.setStatus(statusSuccess)
		if d.Status != event.StatusOK {
			r.setStatus(statusFailure)
		}
		r.StatusDetail = "result " + d.Status
		actionID = d.ActionID
	case event.ToolsHidden:
		// The listing was answered; these tools were withheld from it.
		a = call{tool: "tools/list", op: "list", pv: ev.PolicyVersion, decision: "deny"}
		r.setStatus(statusSuccess)
		for _, h := range d.Hidden {
			r.Resources = append(r.Resources, Resource{UID: h.Tool, Type: "tool"})
		}
		r.StatusDetail = fmt.Sprintf("%d of %d listed tools hidden", len(d.Hidden), d.Listed)
	case event.Rejection:
		a = call{tool: "authorize", decision: "deny"}
		r.setStatus(statusFailure)
		r.StatusDetail, r.Message = d.Refusal()
	default:
		return r, false
	}
	id, name := activity(a.op)
	m.base(&r, e, classAPIActivity, id, name)
	r.setSeverity(sevInformational)
	if r.StatusID == statusFailure {
		r.setSeverity(sevLow)
	}
	r.Actor = agentActor(ev, []Authorization{m.decision(a.decision, a.pv)})
	r.Unmapped = map[string]any{"writ_type": ev.Type, "ledger_index": e.Index}
	r.API = &API{Operation: a.tool}
	if actionID != "" {
		r.API.Request = map[string]any{"uid": actionID}
	}
	if fam, _, ok := strings.Cut(a.tool, "."); ok {
		r.API.Service = m.shared.get(&m.shared.services, fam, func() map[string]any { return map[string]any{"name": fam} })
	}
	if a.op != "" {
		r.Unmapped["operation"] = a.op
	}
	if a.resource != "" && r.Resources == nil {
		res := Resource{UID: a.resource, Type: "tool resource"}
		if a.class != "" {
			res.Labels = []string{"data_class:" + a.class}
		}
		r.Resources = []Resource{res}
	}
	r.SrcEndpoint = map[string]any{"name": ev.Agent}
	if ev.DecisionID != "" {
		r.Unmapped["decision_id"] = ev.DecisionID
	}
	if ev.TraceID != "" {
		r.Unmapped["trace_id"] = ev.TraceID
	}
	return r, true
}

// agentActor is the agent acting under its principal, task and
// credential, with the authorizations given.
func agentActor(ev ledger.Event, auths []Authorization) *Actor {
	a := &Actor{AppName: "agent", AppUID: ev.Agent, Authorizations: auths}
	if ev.Principal != "" {
		a.User = map[string]any{"uid": ev.Principal}
	}
	if ev.TaskID != "" || ev.JTI != "" {
		a.Session = map[string]any{}
		if ev.TaskID != "" {
			a.Session["uid"] = ev.TaskID
		}
		if ev.JTI != "" {
			a.Session["credential_uid"] = ev.JTI
		}
	}
	return a
}

// decision is an authorization by the policy version pv (none when empty).
func (m *Mapper) decision(d, pv string) Authorization {
	auth := Authorization{Decision: d}
	if pv != "" {
		auth.Policy = m.shared.get(&m.shared.policies, pv, func() map[string]any {
			return map[string]any{"uid": pv, "version": pv, "name": "writ policy bundle"}
		})
	}
	return auth
}

// activity maps an operation to an API Activity activity.
func activity(op string) (int, string) {
	switch strings.ToLower(op) {
	case "create", "write", "send", "post", "insert", "add":
		return 1, "Create"
	case "read", "get", "list", "search", "query", "call":
		return 2, "Read"
	case "update", "put", "patch", "modify":
		return 3, "Update"
	case "delete", "remove":
		return 4, "Delete"
	}
	return 99, "Other"
}

// unmapped is what every record not of a bundle keeps of the envelope.
func (m *Mapper) unmapped(e ledger.Entry) map[string]any {
	ev := e.Event
	u := map[string]any{"writ_type": ev.Type, "ledger_index": e.Index}
	if ev.DecisionID != "" {
		u["decision_id"] = ev.DecisionID
	}
	if ev.TraceID != "" {
		u["trace_id"] = ev.TraceID
	}
	return u
}
