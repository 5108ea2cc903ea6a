package event

import (
	"time"

	"github.com/writhq/writ/api"
)

// TaskRequested is task.requested: a task opened, before its decision (in
// the same commit). Bodies: "intent".
type TaskRequested struct {
	Scope api.Scope `json:"scope"`
	// ScopeHash is the digest of Scope that task approvals bind to.
	ScopeHash string `json:"scope_hash"`
	// TTL is the lifetime asked for, as a Go duration ("15m0s").
	TTL string `json:"ttl"`
	// Parent is the parent task of a child task.
	Parent      string `json:"parent,omitempty"`
	Environment string `json:"environment"`
}

// TaskActivated is task.activated: the task may act from now until
// ExpiresAt.
type TaskActivated struct {
	// TTL is the lifetime granted, after the policy's max_ttl cap.
	TTL       string    `json:"ttl"`
	ExpiresAt time.Time `json:"expires_at"`
	// ApprovalID is the approval whose grants activated the task, if any.
	ApprovalID string `json:"approval_id,omitempty"`
}

// TaskDenied is task.denied: by the task decision, or by an approver
// (ApprovalID set).
type TaskDenied struct {
	Reasons    []string `json:"reasons"`
	ApprovalID string   `json:"approval_id,omitempty"`
}

// TaskDelegated is task.delegated, appended under the parent's task_id
// when a child task is opened.
type TaskDelegated struct {
	Child string `json:"child_task_id"`
}

// TaskEnded is task.completed, task.expired and task.revoked.
type TaskEnded struct {
	// Reason is ReasonTaskCompleted, ReasonTaskExpired or
	// ReasonApprovalTTL, ReasonParentEnded, or the revoker's own words.
	Reason string `json:"reason,omitempty"`
	// By is who ended it: a principal ID, or ByWrit for expiry and
	// cascades.
	By string `json:"by"`
}

// TaskHeld is task.held: a legal hold placed on a task. While it holds,
// no body of the task's events, or of its descendants' events, is erased:
// not by retention, and not by request unless forced.
type TaskHeld struct {
	Reason string `json:"reason"`
	// By is the principal ID of who placed the hold.
	By string `json:"by"`
}

// TaskReleased is task.released: the task's legal hold lifted.
type TaskReleased struct {
	Reason string `json:"reason"`
	// By is the principal ID of who released it.
	By string `json:"by"`
	// Hold is the ledger index of the task.held event it releases.
	Hold uint64 `json:"hold"`
}

// Reasons recorded in TaskEnded, CredentialRevoked, ActionCompleted and
// AuthRejected.
const (
	ReasonTaskCompleted = "task_completed"
	ReasonTaskExpired   = "task_expired"
	ReasonTaskRevoked   = "task_revoked"
	// ReasonParentEnded: the task was revoked because its parent ended.
	ReasonParentEnded = "parent_ended"
	// ReasonCredentialRevoked: the credential that authorized a call was
	// revoked while the call was in flight.
	ReasonCredentialRevoked = "credential_revoked"
	// ReasonSelfApproval: a requester tried to approve their own task or
	// step-up (AuthRejected).
	ReasonSelfApproval = "self_approval"
	// ReasonApprovalTTL: a pending approval expired, and with it the task.
	ReasonApprovalTTL = "approval_expired"
)

// ByWrit is the By of changes writ makes on its own.
const ByWrit = "writ"
