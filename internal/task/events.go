package task

import (
	"encoding/json"
	"time"

	"github.com/writhq/writ/internal/policy"
)

// The data member of each task-related event type. docs/tasks.md documents
// them; field names are part of the ledger's contract.

// requestedData is task.requested. Bodies: "intent".
type requestedData struct {
	Scope       Scope  `json:"scope"`
	ScopeHash   string `json:"scope_hash"`
	TTL         string `json:"ttl"`
	Parent      string `json:"parent,omitempty"`
	Environment string `json:"environment"`
}

// decidedData is policy.decided. Bodies: "input", the policy input document,
// so the decision can be replayed against the exact policy version.
type decidedData struct {
	Point       string             `json:"point"`
	Engine      string             `json:"engine"`
	Effect      string             `json:"effect"`
	Reasons     []string           `json:"reasons"`
	Obligations policy.Obligations `json:"obligations"`
	PolicyIDs   []string           `json:"policy_ids"`
}

// activatedData is task.activated.
type activatedData struct {
	TTL       string    `json:"ttl"`
	ExpiresAt time.Time `json:"expires_at"`
	// Approvals lists the approval whose grants activated the task, if any.
	ApprovalID string `json:"approval_id,omitempty"`
}

// deniedData is task.denied.
type deniedData struct {
	Reasons    []string `json:"reasons"`
	ApprovalID string   `json:"approval_id,omitempty"`
}

// approvalRequestedData is approval.requested. Step-ups carry the call's
// arguments (redacted) as the body "arguments".
type approvalRequestedData struct {
	ApprovalID string    `json:"approval_id"`
	Kind       string    `json:"kind"`
	Required   int       `json:"approvals_required"`
	ExpiresAt  time.Time `json:"expires_at"`
	Reasons    []string  `json:"reasons,omitempty"`
	ScopeHash  string    `json:"scope_hash,omitempty"`
	Tool       string    `json:"tool,omitempty"`
	Operation  string    `json:"operation,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	DataClass  string    `json:"data_class,omitempty"`
	// ArgsMAC is the keyed digest of the step-up's original arguments
	// (mac.go). ArgsDigest, their unsalted SHA-256, is only read, from
	// step-ups recorded before args_mac replaced it.
	ArgsMAC    string `json:"args_mac,omitempty"`
	ArgsDigest string `json:"args_digest,omitempty"`
}

// approvalDecidedData is approval.granted and approval.denied: the binding
// {task_id, scope_hash | tool+operation+resource+data_class+args_mac,
// policy_version, approver, expiry}.
type approvalDecidedData struct {
	ApprovalID string    `json:"approval_id"`
	Kind       string    `json:"kind"`
	Approver   string    `json:"approver"`
	Reason     string    `json:"reason,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	ScopeHash  string    `json:"scope_hash,omitempty"`
	Tool       string    `json:"tool,omitempty"`
	Operation  string    `json:"operation,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	DataClass  string    `json:"data_class,omitempty"`
	ArgsMAC    string    `json:"args_mac,omitempty"`
	// ArgsDigest is only read, from decisions recorded before args_mac.
	ArgsDigest string `json:"args_digest,omitempty"`
}

// credentialIssuedData is credential.issued (jti in the envelope).
type credentialIssuedData struct {
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expires_at"`
	Binding   string    `json:"binding"`
}

// credentialRevokedData is credential.revoked (jti in the envelope).
type credentialRevokedData struct {
	Reason string `json:"reason"`
}

// actionData is action.authorized and action.denied. Bodies: "arguments"
// (after redaction) and "input" (the policy input, arguments redacted).
type actionData struct {
	ActionID  string `json:"action_id"`
	Tool      string `json:"tool"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
	DataClass string `json:"data_class,omitempty"`
	// ArgsMAC is the keyed digest of the original (unredacted) arguments
	// (mac.go). ArgsDigest, their unsalted SHA-256, is only read, from
	// events recorded before args_mac replaced it.
	ArgsMAC     string             `json:"args_mac,omitempty"`
	ArgsDigest  string             `json:"args_digest,omitempty"`
	Effect      string             `json:"effect"`
	Reasons     []string           `json:"reasons,omitempty"`
	Obligations policy.Obligations `json:"obligations"`
	PolicyIDs   []string           `json:"policy_ids"`
	// Redacted lists the argument paths replaced before storing the body.
	Redacted []string `json:"redacted,omitempty"`
	// StepUp is the granted step-up approval this call consumed.
	StepUp string `json:"step_up,omitempty"`
	// ApprovalID is the step-up requested for a require_approval answer.
	ApprovalID string `json:"approval_id,omitempty"`
	// Refused says why writ denied a call the policy did not deny:
	// "binding_required" when an obligation asked for a sender-constrained
	// credential and the call's was not. Effect stays the policy's.
	Refused string `json:"refused,omitempty"`
}

// completedData is action.completed. Bodies: "output" when recorded; the
// body's salted commitment then binds it. An output not recorded is bound
// by its keyed digest OutputMAC instead. (Events recorded before this
// carried an unsalted output_digest, no longer written.)
type completedData struct {
	ActionID       string `json:"action_id"`
	Status         string `json:"status"`
	OutputRecorded bool   `json:"output_recorded"`
	OutputMAC      string `json:"output_mac,omitempty"`
	// Redacted lists the output paths replaced before storing the body.
	Redacted []string `json:"redacted,omitempty"`
	// Reason says why a cancelled call was cancelled (ReasonTaskRevoked…).
	Reason string `json:"reason,omitempty"`
}

// endedData is task.completed, task.expired and task.revoked.
type endedData struct {
	Reason string `json:"reason,omitempty"`
	// By is who ended it: a principal ID, or "writ" for expiry and cascades.
	By string `json:"by"`
}

// delegatedData is task.delegated, appended under the parent's task_id.
type delegatedData struct {
	Child string `json:"child_task_id"`
}

// rejectedData is auth.rejected for refusals this package records.
type rejectedData struct {
	Reason     string `json:"reason"`
	Detail     string `json:"detail,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
}

// Credential revocation and end reasons.
const (
	ReasonTaskCompleted = "task_completed"
	ReasonTaskExpired   = "task_expired"
	ReasonTaskRevoked   = "task_revoked"
	ReasonParentEnded   = "parent_ended"
	// ReasonCredentialRevoked: the credential that authorized a call was
	// revoked while the call was in flight.
	ReasonCredentialRevoked = "credential_revoked"
	ReasonSelfApproval      = "self_approval"
	ReasonApprovalTTL       = "approval_expired"
	// ByWrit is the actor of changes writ makes on its own.
	ByWrit = "writ"
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("task: encoding event data: " + err.Error())
	}
	return b
}
