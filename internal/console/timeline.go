package console

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
)

// timeline is a task's trace as the task page draws it.
type timeline struct {
	Items          []timelineItem
	Verified       int
	CheckpointSize uint64
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
	for _, te := range tr.Events {
		it, err := itemOf(te, tr.TaskID)
		if err != nil {
			return nil, fmt.Errorf("event %d of the trace: %v", te.Index, err)
		}
		if te.Verified {
			tl.Verified++
		}
		tl.Items = append(tl.Items, it)
	}
	return tl, nil
}

func itemOf(te api.TraceEvent, root string) (timelineItem, error) {
	ent, err := ledger.ParseLeaf(te.Index, te.Event)
	if err != nil {
		return timelineItem{}, err
	}
	e := ent.Event
	d := map[string]any{}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return timelineItem{}, fmt.Errorf("data: %v", err)
		}
	}
	str := func(k string) string {
		switch v := d[k].(type) {
		case string:
			return v
		case float64, bool:
			return fmt.Sprint(v)
		}
		return ""
	}
	it := timelineItem{Index: te.Index, Verified: te.Verified, Time: e.Time, Type: e.Type, TaskID: e.TaskID,
		Child: e.TaskID != "" && e.TaskID != root, Who: e.Principal, Class: "other", Title: e.Type}
	add := func(name, v string) {
		if v != "" {
			it.Fields = append(it.Fields, field{name, v})
		}
	}
	reasons := func() {
		if rs, ok := d["reasons"].([]any); ok {
			for _, r := range rs {
				add("reason", fmt.Sprint(r))
			}
		}
	}
	switch e.Type {
	case ledger.TypeTaskRequested:
		it.Class, it.Title = "request", "Task requested"
		if it.Child {
			it.Class, it.Title = "child", "Child task requested"
		}
		add("agent", e.Agent)
		add("scope hash", str("scope_hash"))
		add("ttl", str("ttl"))
		add("parent", str("parent"))
	case ledger.TypePolicyDecided:
		it.Class, it.Title, it.Who = "decision", "Policy decided: "+str("effect"), "policy"
		add("point", str("point"))
		add("policy version", e.PolicyVersion)
		add("decision", e.DecisionID)
		reasons()
	case ledger.TypeApprovalRequested:
		it.Class, it.Title, it.Who = "approval", "Approval requested", "policy"
		add("approval", str("approval_id"))
		add("kind", str("kind"))
		add("tool", str("tool"))
		add("approvals required", str("approvals_required"))
		add("expires", str("expires_at"))
		reasons()
	case ledger.TypeApprovalGranted, ledger.TypeApprovalDenied:
		it.Class, it.Who = "approval", str("approver")
		it.Title = "Approval granted"
		if e.Type == ledger.TypeApprovalDenied {
			it.Class, it.Title = "denied", "Approval denied"
		}
		add("approval", str("approval_id"))
		add("reason", str("reason"))
		add("tool", str("tool"))
		add("policy version", e.PolicyVersion)
	case ledger.TypeTaskActivated:
		it.Class, it.Title, it.Who = "approval", "Task active", "writ"
		add("until", str("expires_at"))
	case ledger.TypeTaskDenied:
		it.Class, it.Title, it.Who = "denied", "Task denied", "writ"
		reasons()
	case ledger.TypeCredentialIssued, ledger.TypeCredentialRevoked:
		it.Class, it.Who = "credential", e.Agent
		it.Title = "Credential issued"
		if e.Type == ledger.TypeCredentialRevoked {
			it.Class, it.Title = "end", "Credential revoked"
		}
		add("jti", e.JTI)
		add("expires", str("expires_at"))
		add("reason", str("reason"))
	case ledger.TypeActionAuthorized:
		it.Class, it.Title, it.Who = "allowed", "Action allowed: "+str("tool"), e.Agent
		if d["step_up"] != nil {
			it.Title += " (step-up)"
		}
		add("resource", str("resource"))
		add("operation", str("operation"))
		add("action", str("action_id"))
		add("data class", str("data_class"))
		add("policy version", e.PolicyVersion)
	case ledger.TypeActionDenied:
		it.Class, it.Title, it.Who = "denied", "Action denied: "+str("tool"), e.Agent
		if str("approval_id") != "" {
			it.Title = "Action held for step-up approval: " + str("tool")
		}
		add("resource", str("resource"))
		add("operation", str("operation"))
		add("approval", str("approval_id"))
		add("policy version", e.PolicyVersion)
		reasons()
	case ledger.TypeActionCompleted:
		it.Class, it.Title, it.Who = "result", "Result: "+str("status"), e.Agent
		add("action", str("action_id"))
		if rec, ok := d["output_recorded"].(bool); ok && !rec {
			add("output", "not recorded (policy)")
		}
	case ledger.TypeTaskDelegated:
		it.Class, it.Title = "child", "Delegated to a child task"
		add("child", str("child_task_id"))
	case ledger.TypeTaskCompleted, ledger.TypeTaskRevoked, ledger.TypeTaskExpired:
		it.Class = "end"
		it.Title = "Task " + strings.TrimPrefix(e.Type, "task.")
		it.Who = str("by")
		if it.Who == "" {
			it.Who = "writ"
		}
		add("reason", str("reason"))
	case ledger.TypeAuthRejected:
		it.Class, it.Title = "denied", "Refused: "+str("reason")
		add("detail", str("detail"))
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
