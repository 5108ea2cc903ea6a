package ledger

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EnvelopeVersion is the version of the event envelope written into every
// leaf. Version 2 added the task chain (chain.go): a version 2 event of a
// task that names no prev is the task's first event in the log. Leaves of
// version 1, written before, still parse; they carry no links.
const EnvelopeVersion = 2

// Event is one fact appended to the ledger. The envelope fields join it to the
// rest of the evidence chain; Data carries the type-specific fields and Bodies
// the large or sensitive payloads, which are committed to rather than stored in
// the leaf.
type Event struct {
	Type          string    `json:"type"`
	Time          time.Time `json:"time"`
	TaskID        string    `json:"task_id,omitempty"`
	Principal     string    `json:"principal,omitempty"`
	Agent         string    `json:"agent,omitempty"`
	DecisionID    string    `json:"decision_id,omitempty"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	JTI           string    `json:"jti,omitempty"`
	TraceID       string    `json:"trace_id,omitempty"`

	// Data holds the type-specific fields as a JSON object.
	Data json.RawMessage `json:"data,omitempty"`

	// Bodies are payloads (arguments, outputs, intent text) stored beside the
	// leaf. The leaf holds only their commitments, sha256(salt || body).
	Bodies map[string][]byte `json:"-"`

	// Prev and Delegation are the event's links in its task's chain
	// (chain.go): the index of the task's previous event, and, on a child
	// task's task.requested, the index of the parent's task.delegated
	// event that opened it. The ledger sets them as it sequences the
	// event; they are set on events read back, and Append refuses an event
	// that sets them itself.
	Prev       *uint64 `json:"prev,omitempty"`
	Delegation *uint64 `json:"delegation,omitempty"`

	// Parent, on a child task's task.requested, names the parent task. It
	// is an instruction to the ledger, not part of the envelope: the
	// ledger links the event to the parent's task.delegated event, which
	// must follow it in the same AppendAll.
	Parent string `json:"-"`
}

// Event types. Every event appended must have one of these types, or a type
// under the ImportPrefix, which carries events from other systems.
const (
	TypeTaskRequested     = "task.requested"
	TypePolicyDecided     = "policy.decided"
	TypeApprovalRequested = "approval.requested"
	TypeApprovalGranted   = "approval.granted"
	TypeApprovalDenied    = "approval.denied"
	TypeTaskActivated     = "task.activated"
	TypeCredentialIssued  = "credential.issued"
	TypeCredentialRevoked = "credential.revoked"
	TypeActionAuthorized  = "action.authorized"
	TypeActionDenied      = "action.denied"
	TypeActionCompleted   = "action.completed"
	TypeTaskDelegated     = "task.delegated"
	TypeTaskCompleted     = "task.completed"
	TypeTaskExpired       = "task.expired"
	TypeTaskRevoked       = "task.revoked"
	TypeTaskDenied        = "task.denied"
	TypeTaskHeld          = "task.held"
	TypeTaskReleased      = "task.released"
	TypePolicyLoaded      = "policy.loaded"
	TypePolicyShadow      = "policy.shadow_disagreed"
	TypePolicyRejected    = "policy.rejected"
	TypeAuthRejected      = "auth.rejected"
	TypeToolsHidden       = "tools.hidden"
	TypeBodyErased        = "ledger.body_erased"
	TypeLedgerStarted     = "ledger.started"
	TypeWitnessRefused    = "witness.refused"

	// ImportPrefix marks events carried in from other systems.
	ImportPrefix = "import."
)

var knownTypes = map[string]bool{
	TypeTaskRequested: true, TypePolicyDecided: true, TypeApprovalRequested: true,
	TypeApprovalGranted: true, TypeApprovalDenied: true, TypeTaskActivated: true,
	TypeCredentialIssued: true, TypeCredentialRevoked: true, TypeActionAuthorized: true,
	TypeActionDenied: true, TypeActionCompleted: true, TypeTaskDelegated: true,
	TypeTaskCompleted: true, TypeTaskExpired: true, TypeTaskRevoked: true,
	TypeTaskDenied: true, TypeTaskHeld: true, TypeTaskReleased: true, TypePolicyLoaded: true, TypePolicyShadow: true,
	TypePolicyRejected: true, TypeAuthRejected: true, TypeToolsHidden: true,
	TypeBodyErased: true, TypeLedgerStarted: true, TypeWitnessRefused: true,
}

// KnownType reports whether t may be appended: one of the types above, or an
// import type such as "import.siem.alert".
func KnownType(t string) bool {
	if knownTypes[t] {
		return true
	}
	rest, ok := strings.CutPrefix(t, ImportPrefix)
	return ok && validTypeSuffix(rest)
}

func validTypeSuffix(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.'
}

// Types returns the event types writ itself appends, for documentation and
// validation.
func Types() []string {
	out := make([]string, 0, len(knownTypes))
	for t := range knownTypes {
		out = append(out, t)
	}
	return out
}

// ValidationError reports an event that cannot be appended; nothing of it was
// written.
type ValidationError struct {
	Field  string
	Reason string
	// Item is the position of the offending event in an AppendAll call.
	Item int
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid event: " + e.Reason
	}
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}
