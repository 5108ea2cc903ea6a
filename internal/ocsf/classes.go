package ocsf

import (
	"encoding/json"
	"strings"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Entity Management activities.
const (
	entityCreate     = 1
	entityUpdate     = 3
	entityDelete     = 4
	entityDisable    = 9
	entityActivate   = 10
	entityDeactivate = 11
)

var entityActivities = map[int]string{
	entityCreate: "Create", entityUpdate: "Update", entityDelete: "Delete",
	entityDisable: "Disable", entityActivate: "Activate", entityDeactivate: "Deactivate",
}

// other maps the events that are not API Activity.
func (m *Mapper) other(e ledger.Entry) Record {
	ev := e.Event
	data, _ := event.Read(ev)
	var r Record
	r.setStatus(statusSuccess)
	r.setSeverity(sevInformational)
	entity := func(activity int, ent Entity) {
		m.base(&r, e, classEntityMgmt, activity, entityActivities[activity])
		r.Entity = &ent
		r.Actor = agentActor(ev, nil)
	}
	task := Entity{UID: ev.TaskID, Type: "task"}
	switch d := data.(type) {
	case event.TaskRequested:
		entity(entityCreate, task)
		r.Unmapped = m.unmapped(e)
		r.Unmapped["scope_hash"], r.Unmapped["ttl"], r.Unmapped["environment"] = d.ScopeHash, d.TTL, d.Environment
		r.Unmapped["tools"] = d.Scope.Tools
		if d.Parent != "" {
			r.Unmapped["parent_task_id"] = d.Parent
		}
	case event.TaskActivated:
		entity(entityActivate, task)
		r.Unmapped = m.unmapped(e)
		r.Unmapped["ttl"], r.Unmapped["expires_at"] = d.TTL, event.TimeText(d.ExpiresAt)
		if d.ApprovalID != "" {
			r.Unmapped["approval_id"] = d.ApprovalID
		}
	case event.TaskDenied:
		entity(entityActivate, task)
		r.setStatus(statusFailure)
		r.setSeverity(sevLow)
		r.StatusDetail, r.Message = "denied", strings.Join(d.Reasons, "; ")
		r.Actor.Authorizations = []Authorization{m.decision("deny", ev.PolicyVersion)}
		r.Unmapped = m.unmapped(e)
		if d.ApprovalID != "" {
			r.Unmapped["approval_id"] = d.ApprovalID
		}
	case event.TaskDelegated:
		entity(entityUpdate, task)
		r.EntityResult = &Entity{UID: d.Child, Type: "task"}
		r.Comment = "delegated to child task " + d.Child
		r.Unmapped = m.unmapped(e)
	case event.TaskEnded:
		act, detail := entityDeactivate, strings.TrimPrefix(ev.Type, "task.")
		if ev.Type == ledger.TypeTaskRevoked {
			act = entityDisable
			r.setSeverity(sevLow)
		}
		entity(act, task)
		r.StatusDetail, r.Comment = detail, d.Reason
		if d.By != "" && d.By != event.ByWrit {
			r.Actor.User = map[string]any{"uid": d.By}
		}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["ended_by"] = d.By
	case event.ApprovalRequested:
		entity(entityCreate, Entity{UID: d.ApprovalID, Name: d.Kind, Type: "approval"})
		r.Message = strings.Join(d.Reasons, "; ")
		r.Unmapped = m.unmapped(e)
		r.Unmapped["approvals_required"], r.Unmapped["expires_at"] = d.Required, event.TimeText(d.ExpiresAt)
		addBinding(r.Unmapped, d.Binding)
	case event.ApprovalDecided:
		entity(entityUpdate, Entity{UID: d.ApprovalID, Name: d.Kind, Type: "approval"})
		verdict := "approve"
		if ev.Type == ledger.TypeApprovalDenied {
			verdict = "deny"
		}
		r.Actor = &Actor{User: map[string]any{"uid": d.Approver}, Authorizations: []Authorization{m.decision(verdict, ev.PolicyVersion)}}
		if ev.TaskID != "" {
			r.Actor.Session = map[string]any{"uid": ev.TaskID}
		}
		r.StatusDetail, r.Comment = verdict, d.Reason
		r.Unmapped = m.unmapped(e)
		addBinding(r.Unmapped, d.Binding)
	case event.TaskHeld:
		entity(entityUpdate, task)
		r.StatusDetail, r.Comment = "held", d.Reason
		r.Actor.User = map[string]any{"uid": d.By}
		r.Unmapped = m.unmapped(e)
	case event.TaskReleased:
		entity(entityUpdate, task)
		r.StatusDetail, r.Comment = "released", d.Reason
		r.Actor.User = map[string]any{"uid": d.By}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["hold_index"] = d.Hold
	case event.BodyErased:
		entity(entityDelete, Entity{UID: UID(m.origin, d.Index) + "/" + d.Name, Name: d.Name, Type: "ledger body"})
		r.Comment = d.Reason
		r.Unmapped = m.unmapped(e)
		r.Unmapped["body_index"], r.Unmapped["commitment"] = d.Index, d.Commitment
	case event.CredentialIssued:
		m.authentication(&r, e, 1, "Logon")
		r.User = map[string]any{"uid": d.Subject}
		r.Session["expiration_time"] = d.ExpiresAt.UnixMilli()
		r.Actor.Authorizations = []Authorization{m.decision("allow", ev.PolicyVersion)}
		r.Unmapped["binding"] = d.Binding
	case event.CredentialRevoked:
		m.authentication(&r, e, 2, "Logoff")
		r.StatusDetail = d.Reason
	case event.PolicyLoaded:
		m.base(&r, e, classAppLifecycle, 8, "Update")
		r.App = policyApp(d.Version)
		r.Message = d.Role + " policy bundle loaded from " + d.Source
		r.Actor = &Actor{AppName: "writ"}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["engine"], r.Unmapped["role"], r.Unmapped["files"] = d.Engine, d.Role, len(d.Files)
	case event.PolicyRejected:
		m.base(&r, e, classAppLifecycle, 8, "Update")
		r.setStatus(statusFailure)
		r.setSeverity(sevMedium)
		r.App = policyApp(d.Version)
		r.StatusDetail, r.Message = "rejected", d.Error
		r.Actor = &Actor{AppName: "writ"}
		r.Unmapped = m.unmapped(e)
		r.Unmapped["role"], r.Unmapped["source"] = d.Role, d.Source
	case event.LedgerStarted:
		m.base(&r, e, classAppLifecycle, 3, "Start")
		r.App = map[string]any{"name": "writ ledger", "vendor_name": "writ", "uid": m.origin}
		r.Actor = &Actor{AppName: "writ"}
		r.Unmapped = m.unmapped(e)
	default:
		// An imported event (or a type this version does not know): its
		// data as recorded.
		m.base(&r, e, classBase, 99, "Other")
		r.Actor = agentActor(ev, nil)
		r.Unmapped = m.unmapped(e)
		if len(ev.Data) > 0 {
			r.Unmapped["data"] = json.RawMessage(ev.Data)
		}
	}
	return r
}

// authentication fills an Authentication record of a task credential.
func (m *Mapper) authentication(r *Record, e ledger.Entry, activity int, name string) {
	ev := e.Event
	m.base(r, e, classAuthn, activity, name)
	r.Actor = agentActor(ev, nil)
	r.Service = map[string]any{"name": "writ"}
	r.Session = map[string]any{"uid": ev.TaskID}
	if ev.JTI != "" {
		r.Session["credential_uid"] = ev.JTI
	}
	r.AuthProtocolID, r.AuthProtocol = 99, "OAuth 2.0 Token Exchange"
	r.Unmapped = m.unmapped(e)
}

func policyApp(version string) map[string]any {
	app := map[string]any{"name": "writ policy bundle", "vendor_name": "writ"}
	if version != "" {
		app["version"], app["uid"] = version, version
	}
	return app
}

// addBinding adds what an approval is for.
func addBinding(u map[string]any, b event.Binding) {
	for k, v := range map[string]string{"scope_hash": b.ScopeHash, "tool": b.Tool, "operation": b.Operation,
		"resource": b.Resource, "data_class": b.DataClass} {
		if v != "" {
			u[k] = v
		}
	}
}
