package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// timeline is a task's trace as the task page draws it.
type timeline struct {
	Items          []timelineItem
	Verified       int
	CheckpointSize uint64
	// Limits are the limits of the trace's tasks and the calls counted
	// against them.
	Limits []task.LimitUse
}

// timelineItem is one link of the chain.
type timelineItem struct {
	Index    uint64
	Verified bool
	Time     time.Time
	Type     string
	Class    string // request, decision, approval, credential, allowed, denied, result, end, child, other
	Title    string
	Who      string
	TaskID   string
	Child    bool // the event belongs to a child task
	Fields   []field
}

type field struct{ Name, Value string }

// buildTimeline reads every leaf of a trace. A leaf that is not a writ
// event is an error, not an item.
func buildTimeline(tr api.Trace) (*timeline, error) {
	tl := &timeline{CheckpointSize: tr.CheckpointSize}
	entries := make([]ledger.Entry, 0, len(tr.Events))
	for _, te := range tr.Events {
		if e, err := ledger.ParseLeaf(te.Index, te.Event); err == nil {
			entries = append(entries, e)
		}
		it, err := itemOf(te, tr.TaskID)
		if err != nil {
			return nil, fmt.Errorf("event %d of the trace: %v", te.Index, err)
		}
		if te.Verified {
			tl.Verified++
		}
		tl.Items = append(tl.Items, it)
	}
	tl.Limits = task.LimitUses(entries)
	return tl, nil
}

// itemOf reads one trace event. Its data is read by the event's type
// (package event); data that does not fit the type is shown as far as it
// decoded, since the trace is there to show what the ledger holds.
func itemOf(te api.TraceEvent, root string) (timelineItem, error) {
	ent, err := ledger.ParseLeaf(te.Index, te.Event)
	if err != nil {
		return timelineItem{}, err
	}
	e := ent.Event
	data, _ := event.Read(e)
	it := timelineItem{Index: te.Index, Verified: te.Verified, Time: e.Time, Type: e.Type, TaskID: e.TaskID,
		Child: e.TaskID != "" && e.TaskID != root, Who: e.Principal, Class: "other", Title: e.Type}
	add := func(name, v string) {
		if v != "" {
			it.Fields = append(it.Fields, field{name, v})
		}
	}
	reasons := func(rs []string) {
		for _, r := range rs {
			add("reason", r)
		}
	}
	switch d := data.(type) {
	case event.TaskRequested:
		it.Class, it.Title = "request", "Task requested"
		if it.Child {
			it.Class, it.Title = "child", "Child task requested"
		}
		add("agent", e.Agent)
		add("scope hash", d.ScopeHash)
		if d.Scope.Limits != nil {
			add("limits", d.Scope.Limits.String())
		}
		add("ttl", d.TTL)
		add("parent", d.Parent)
	case event.PolicyDecided:
		it.Class, it.Title, it.Who = "decision", "Policy decided: "+d.Effect, "policy"
		add("point", d.Point)
		add("policy version", e.PolicyVersion)
		add("decision", e.DecisionID)
		reasons(d.Reasons)
	case event.ApprovalRequested:
		it.Class, it.Title, it.Who = "approval", "Approval requested", "policy"
		add("approval", d.ApprovalID)
		add("kind", d.Kind)
		add("tool", d.Tool)
		if d.Required != 0 {
			add("approvals required", strconv.Itoa(d.Required))
		}
		add("expires", event.TimeText(d.ExpiresAt))
		reasons(d.Reasons)
	case event.ApprovalDecided:
		it.Class, it.Who = "approval", d.Approver
		it.Title = "Approval granted"
		if e.Type == ledger.TypeApprovalDenied {
			it.Class, it.Title = "denied", "Approval denied"
		}
		add("approval", d.ApprovalID)
		add("reason", d.Reason)
		add("tool", d.Tool)
		add("policy version", e.PolicyVersion)
	case event.TaskActivated:
		it.Class, it.Title, it.Who = "approval", "Task active", "writ"
		add("until", event.TimeText(d.ExpiresAt))
	case event.TaskDenied:
		it.Class, it.Title, it.Who = "denied", "Task denied", "writ"
		reasons(d.Reasons)
	case event.CredentialIssued:
		it.Class, it.Title, it.Who = "credential", "Credential issued", e.Agent
		add("jti", e.JTI)
		add("expires", event.TimeText(d.ExpiresAt))
	case event.CredentialRevoked:
		it.Class, it.Title, it.Who = "end", "Credential revoked", e.Agent
		add("jti", e.JTI)
		add("reason", d.Reason)
	case event.ActionDecided:
		if e.Type == ledger.TypeActionDenied {
			it.Class, it.Title, it.Who = "denied", "Action denied: "+d.Tool, e.Agent
			if d.ApprovalID != "" {
				it.Title = "Action held for step-up approval: " + d.Tool
			}
			add("resource", d.Resource)
			add("operation", d.Operation)
			add("approval", d.ApprovalID)
			add("policy version", e.PolicyVersion)
			if l := d.Limit; l != nil {
				it.Title = "Action refused at a limit: " + d.Tool
				lim := "limits." + l.Name
				if l.Tool != "" {
					lim += " " + l.Tool
				}
				add("limit reached", fmt.Sprintf("%s %d, of task %s", lim, l.Max, l.TaskID))
			} else if d.Refused != "" {
				add("refused", d.Refused)
			}
			reasons(d.Reasons)
			break
		}
		it.Class, it.Title, it.Who = "allowed", "Action allowed: "+d.Tool, e.Agent
		if d.StepUp != "" {
			it.Title += " (step-up)"
		}
		add("resource", d.Resource)
		add("operation", d.Operation)
		add("action", d.ActionID)
		add("data class", d.DataClass)
		add("policy version", e.PolicyVersion)
	case event.ActionCompleted:
		it.Class, it.Title, it.Who = "result", "Result: "+d.Status, e.Agent
		add("action", d.ActionID)
		if !d.OutputRecorded {
			add("output", "not recorded (policy)")
		}
	case event.TaskDelegated:
		it.Class, it.Title = "child", "Delegated to a child task"
		add("child", d.Child)
	case event.TaskEnded:
		it.Class = "end"
		it.Title = "Task " + strings.TrimPrefix(e.Type, "task.")
		it.Who = d.By
		if it.Who == "" {
			it.Who = "writ"
		}
		add("reason", d.Reason)
	case event.Rejection:
		reason, detail := d.Refusal()
		it.Class, it.Title = "denied", "Refused: "+reason
		add("detail", detail)
	case event.TaskHeld:
		it.Class, it.Title, it.Who = "end", "Legal hold placed", d.By
		add("reason", d.Reason)
	case event.TaskReleased:
		it.Class, it.Title, it.Who = "approval", "Legal hold lifted", d.By
		add("reason", d.Reason)
		add("hold", strconv.FormatUint(d.Hold, 10))
	case event.BodyErased:
		it.Class, it.Title, it.Who = "end", "Body erased: "+d.Name, firstNonEmpty(e.Principal, "writ")
		add("of event", strconv.FormatUint(d.Index, 10))
		add("reason", d.Reason)
		if d.Retention != nil {
			add("retention rule", strings.TrimSpace(d.Retention.Type+" "+d.Retention.Body+" "+d.Retention.DataClass)+", kept "+d.Retention.Keep)
		}
		if d.OverridesHold != nil {
			add("overrode the hold of event", strconv.FormatUint(*d.OverridesHold, 10))
		}
	}
	if it.Who == "" {
		it.Who = e.Agent
	}
	if it.Who == "" {
		it.Who = "writ"
	}
	add("trace id", e.TraceID)
	return it, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
