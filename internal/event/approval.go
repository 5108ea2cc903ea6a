package event

import "time"

// Approval kinds (ApprovalRequested.Kind, ApprovalDecided.Kind).
const (
	// KindTask approves a task's scope before it is activated.
	KindTask = "task"
	// KindStepUp approves one tool call the policy held.
	KindStepUp = "step_up"
)

// ApprovalRequested is approval.requested. A step-up carries the call's
// arguments, redacted, as the body "arguments".
type ApprovalRequested struct {
	ApprovalID string    `json:"approval_id"`
	Kind       string    `json:"kind"`
	Required   int       `json:"approvals_required"`
	ExpiresAt  time.Time `json:"expires_at"`
	Reasons    []string  `json:"reasons,omitempty"`
	Binding
}

// ApprovalDecided is approval.granted and approval.denied: one approver's
// decision, repeating the binding it decides on (task_id and
// policy_version are in the envelope).
type ApprovalDecided struct {
	ApprovalID string    `json:"approval_id"`
	Kind       string    `json:"kind"`
	Approver   string    `json:"approver"`
	Reason     string    `json:"reason,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	Binding
}

// Binding is what an approval is for, its members inline in the data: a
// task approval the task's scope (ScopeHash), a step-up the exact call
// (Tool, Operation, Resource, DataClass and ArgsMAC).
type Binding struct {
	ScopeHash string `json:"scope_hash,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
	DataClass string `json:"data_class,omitempty"`
	// ArgsMAC is the keyed digest of the step-up's original arguments.
	ArgsMAC string `json:"args_mac,omitempty"`
	// ArgsDigest, their unsalted SHA-256, is only read, from step-ups
	// recorded before args_mac replaced it.
	ArgsDigest string `json:"args_digest,omitempty"`
}
