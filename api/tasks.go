package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scope is what a task allows: tools and resources as glob patterns,
// operations, the highest data class, and environments; and, optionally,
// how many calls (Limits).
type Scope struct {
	Tools        []string `json:"tools"`
	Resources    []string `json:"resources"`
	Operations   []string `json:"operations"`
	DataClass    string   `json:"data_class"`
	Environments []string `json:"environments"`
	// Limits, when set, caps the calls writ authorizes under the task and
	// the tasks delegated from it. Absent, the scope (and its hash) is as
	// it was before limits existed.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits caps the calls authorized under a task, counted over the task
// and its descendants; writ enforces them exactly, concurrent calls
// included. Each is at least 1; an absent one does not limit.
type Limits struct {
	// Calls caps the calls authorized over the task's life.
	Calls *int64 `json:"calls,omitempty"`
	// PerTool caps the calls authorized of the tools each pattern matches
	// ('*' matches any run of characters, as in Scope.Tools).
	PerTool map[string]int64 `json:"per_tool,omitempty"`
	// PerMinute caps the calls authorized in the current second and the 59
	// before it.
	PerMinute *int64 `json:"per_minute,omitempty"`
}

// String shows the limits as writ's CLI and console do, in the order of
// the fields and per_tool by pattern: "calls 500, per_tool mail.send 5,
// per_minute 60".
func (l *Limits) String() string {
	if l == nil {
		return ""
	}
	var parts []string
	if l.Calls != nil {
		parts = append(parts, fmt.Sprintf("calls %d", *l.Calls))
	}
	tools := make([]string, 0, len(l.PerTool))
	for k := range l.PerTool {
		tools = append(tools, k)
	}
	slices.Sort(tools)
	for _, k := range tools {
		parts = append(parts, fmt.Sprintf("per_tool %s %d", k, l.PerTool[k]))
	}
	if l.PerMinute != nil {
		parts = append(parts, fmt.Sprintf("per_minute %d", *l.PerMinute))
	}
	return strings.Join(parts, ", ")
}

// OpenTask is the body of POST /v1/tasks.
type OpenTask struct {
	Agent  string  `json:"agent"`
	Intent string  `json:"intent"`
	Scope  Scope   `json:"scope"`
	TTL    string  `json:"ttl"`
	Parent *string `json:"parent"`
}

// TaskOpened answers POST /v1/tasks.
type TaskOpened struct {
	TaskID        string   `json:"task_id"`
	State         string   `json:"state"`
	DecisionID    string   `json:"decision_id"`
	PolicyVersion string   `json:"policy_version"`
	ScopeHash     string   `json:"scope_hash"`
	Reasons       []string `json:"reasons,omitempty"`
	// ApprovalsRequired is how many distinct approvers must approve.
	ApprovalsRequired int `json:"approvals_required,omitempty"`
}

// Task states.
const (
	StatePendingApproval = "pending_approval"
	StateActive          = "active"
	StateDenied          = "denied"
	StateCompleted       = "completed"
	StateExpired         = "expired"
	StateRevoked         = "revoked"
)

// Task is a task as GET /v1/tasks/{id} returns it.
type Task struct {
	TaskID            string     `json:"task_id"`
	State             string     `json:"state"`
	Requester         string     `json:"requester"`
	Agent             string     `json:"agent"`
	Intent            string     `json:"intent"`
	Scope             Scope      `json:"scope"`
	ScopeHash         string     `json:"scope_hash"`
	TTL               string     `json:"ttl"`
	Parent            string     `json:"parent,omitempty"`
	Children          []string   `json:"children,omitempty"`
	DecisionID        string     `json:"decision_id"`
	PolicyVersion     string     `json:"policy_version"`
	Reasons           []string   `json:"reasons,omitempty"`
	ApprovalsRequired int        `json:"approvals_required,omitempty"`
	Approvals         []Approval `json:"approvals,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	ExpiresAt         time.Time  `json:"expires_at"`
	EndedAt           *time.Time `json:"ended_at,omitempty"`
	// LedgerIndex is the index of the task.requested event.
	LedgerIndex uint64 `json:"ledger_index"`
	// Hold is the legal hold the task is under, its own or an ancestor's
	// (docs/retention.md); absent when none holds.
	Hold *TaskHold `json:"hold,omitempty"`
}

// TaskHold is a legal hold on a task. While it holds, no body of the
// task's events or its descendants' is erased.
type TaskHold struct {
	// TaskID is the task the hold was placed on: the task itself, or an
	// ancestor whose hold covers it.
	TaskID string    `json:"task_id"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// LedgerIndex is the index of the task.held event.
	LedgerIndex uint64 `json:"ledger_index"`
}

// HoldRequest is the body of POST /v1/tasks/{id}/hold and of DELETE
// /v1/tasks/{id}/hold: why the hold is placed or lifted.
type HoldRequest struct {
	Reason string `json:"reason"`
}

// TaskList answers GET /v1/tasks.
type TaskList struct {
	Tasks []Task `json:"tasks"`
}

// Decide is the body of POST /v1/tasks/{id}/approvals and
// POST /v1/approvals/{id}.
type Decide struct {
	Decision string `json:"decision"` // approve or deny
	Reason   string `json:"reason"`
}

// Decided answers an approval decision.
type Decided struct {
	TaskID     string `json:"task_id"`
	State      string `json:"state"`
	ApprovalID string `json:"approval_id"`
}

// Approval is one approver's decision, or a pending request for one.
type Approval struct {
	ApprovalID    string    `json:"approval_id"`
	Kind          string    `json:"kind"` // task or step_up
	TaskID        string    `json:"task_id"`
	Approver      string    `json:"approver,omitempty"`
	Decision      string    `json:"decision,omitempty"` // approve, deny; empty while pending
	Reason        string    `json:"reason,omitempty"`
	ScopeHash     string    `json:"scope_hash,omitempty"`
	PolicyVersion string    `json:"policy_version"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Step-ups only: the exact call the approval covers, all of which it
	// is bound to (with the policy version and expiry above). Arguments are
	// as recorded (redacted); ArgsMAC is writ's keyed digest of the
	// original arguments, which only writ can recompute.
	Tool      string          `json:"tool,omitempty"`
	Operation string          `json:"operation,omitempty"`
	Resource  string          `json:"resource,omitempty"`
	DataClass string          `json:"data_class,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	ArgsMAC   string          `json:"args_mac,omitempty"`
}

// PendingApproval is what an approver needs to decide, from
// GET /v1/approvals.
type PendingApproval struct {
	Approval
	Requester         string   `json:"requester"`
	Agent             string   `json:"agent"`
	Intent            string   `json:"intent"`
	Scope             Scope    `json:"scope"`
	Reasons           []string `json:"reasons,omitempty"`
	ApprovalsRequired int      `json:"approvals_required"`
	ApprovalsGiven    int      `json:"approvals_given"`
}

// PendingApprovals answers GET /v1/approvals.
type PendingApprovals struct {
	Approvals []PendingApproval `json:"approvals"`
}

// Authorize is the body of POST /v1/authorize.
type Authorize struct {
	Tool      string          `json:"tool"`
	Operation string          `json:"operation"`
	Resource  string          `json:"resource"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	DataClass string          `json:"data_class,omitempty"`
}

// Authorized answers POST /v1/authorize (200 when Allow, else 403).
type Authorized struct {
	Allow            bool     `json:"allow"`
	ActionID         string   `json:"action_id,omitempty"`
	DecisionID       string   `json:"decision_id"`
	Reasons          []string `json:"reasons,omitempty"`
	ApprovalRequired bool     `json:"approval_required,omitempty"`
	ApprovalID       string   `json:"approval_id,omitempty"`
	// RecordOutput says whether the result's output will be kept.
	RecordOutput *bool    `json:"record_output,omitempty"`
	Redact       []string `json:"redact,omitempty"`
}

// ActionResult is the body of POST /v1/actions/{id}/result.
type ActionResult struct {
	Status string          `json:"status"` // ok, error or cancelled
	Output json.RawMessage `json:"output,omitempty"`
}

// ResultRecorded answers POST /v1/actions/{id}/result.
type ResultRecorded struct {
	ActionID    string `json:"action_id"`
	LedgerIndex uint64 `json:"ledger_index"`
}

// TokenResponse is the RFC 8693 answer of POST /oauth2/token.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	Scope           string `json:"scope"`
}

// TraceEvent is one link of a task's chain.
type TraceEvent struct {
	Index uint64          `json:"index"`
	Event json.RawMessage `json:"event"` // the leaf: the canonical event
	// Verified is true when the event's inclusion in Checkpoint was proven.
	Verified bool `json:"verified"`
}

// Trace answers GET /v1/tasks/{id}/trace.
type Trace struct {
	TaskID         string       `json:"task_id"`
	Tasks          []string     `json:"tasks"` // the task and its descendants
	CheckpointSize uint64       `json:"checkpoint_size"`
	Checkpoint     string       `json:"checkpoint"`
	Events         []TraceEvent `json:"events"`
	// Witnessed, with witnesses configured, is the newest checkpoint the
	// witness quorum cosigned (Checkpoint extends it).
	Witnessed *TraceWitnessed `json:"witnessed,omitempty"`
}

// TraceWitnessed is a checkpoint cosigned by witnesses, in a trace.
type TraceWitnessed struct {
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Checkpoint is the signed note with its cosignature lines.
	Checkpoint   string             `json:"checkpoint"`
	Quorum       int                `json:"quorum"`
	Cosignatures []TraceCosignature `json:"cosignatures"`
	// Events is how many of the trace's events it covers.
	Events int `json:"events"`
}

// TraceCosignature is one witness's cosignature: its name, its verifier
// key and its timestamp (when it cosigned).
type TraceCosignature struct {
	Witness string    `json:"witness"`
	Key     string    `json:"key"`
	Time    time.Time `json:"time"`
}

// StepUp answers GET /v1/approvals/{id}/status: what became of a step-up
// approval request, for the agent that was asked to wait for it (by its
// task token). Status is pending, granted (the approved call may be
// retried, once), used (a retry already consumed it), denied (Reason is
// the denying approver's) or expired.
type StepUp struct {
	ApprovalID        string    `json:"approval_id"`
	TaskID            string    `json:"task_id"`
	Status            string    `json:"status"`
	ExpiresAt         time.Time `json:"expires_at"`
	ApprovalsRequired int       `json:"approvals_required"`
	ApprovalsGiven    int       `json:"approvals_given"`
	Reason            string    `json:"reason,omitempty"`
	Tool              string    `json:"tool"`
	Operation         string    `json:"operation"`
	Resource          string    `json:"resource"`
}
