package event

// ActionDecided is action.authorized and action.denied: one tool call
// decided at the action point. Bodies: "arguments" (after redaction) and
// "input" (the policy input, its arguments redacted).
type ActionDecided struct {
	// ActionID names an authorized call; a denied one has none.
	ActionID  string `json:"action_id"`
	Tool      string `json:"tool"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
	DataClass string `json:"data_class,omitempty"`
	// ArgsMAC is the keyed digest of the original (unredacted) arguments.
	ArgsMAC string `json:"args_mac,omitempty"`
	// ArgsDigest, their unsalted SHA-256, is only read, from events
	// recorded before args_mac replaced it.
	ArgsDigest  string      `json:"args_digest,omitempty"`
	Effect      string      `json:"effect"`
	Reasons     []string    `json:"reasons,omitempty"`
	Obligations Obligations `json:"obligations"`
	PolicyIDs   []string    `json:"policy_ids"`
	// Redacted lists the argument paths replaced before storing the body.
	Redacted []string `json:"redacted,omitempty"`
	// StepUp is the granted step-up approval this call consumed.
	StepUp string `json:"step_up,omitempty"`
	// ApprovalID is the step-up requested for a require_approval answer.
	ApprovalID string `json:"approval_id,omitempty"`
	// Refused says why writ denied a call for a reason of its own
	// (RefusedBindingRequired, RefusedUnrecordable, RefusedLimit). Effect
	// stays the policy's.
	Refused string `json:"refused,omitempty"`
	// Limit names the scope limit a call refused with RefusedLimit
	// reached.
	Limit *LimitReached `json:"limit,omitempty"`
}

// RefusedLimit is the Refused of a call denied because it would pass a
// limit of its task's scope, or of a task it was delegated from (Limit
// says which).
const RefusedLimit = "limit_reached"

// LimitReached names a scope limit reached: the task whose scope sets it,
// the limit ("calls", "per_tool" with its tool pattern, "per_minute") and
// its value.
type LimitReached struct {
	TaskID string `json:"task_id"`
	Name   string `json:"name"`
	Tool   string `json:"tool,omitempty"`
	Max    int64  `json:"max"`
}

// Names of LimitReached.
const (
	LimitCalls     = "calls"
	LimitPerTool   = "per_tool"
	LimitPerMinute = "per_minute"
)

// RefusedBindingRequired is the Refused of a call denied because an
// obligation asked for a sender-constrained credential and the call's was
// not.
const RefusedBindingRequired = "binding_required"

// RefusedUnrecordable is the Refused of a call denied because its record
// could not be built in full (its arguments could not be redacted, or its
// policy input encoded); it is recorded without bodies.
const RefusedUnrecordable = "unrecordable"

// ActionCompleted is action.completed: what became of an authorized call.
// Bodies: "output" when recorded; the body's salted commitment then binds
// it. An output not recorded is bound by its keyed digest OutputMAC
// instead.
type ActionCompleted struct {
	ActionID string `json:"action_id"`
	// Status is StatusOK, StatusError or StatusCancelled.
	Status         string `json:"status"`
	OutputRecorded bool   `json:"output_recorded"`
	OutputMAC      string `json:"output_mac,omitempty"`
	// OutputDigest, the output's unsalted SHA-256, is only read, from
	// events recorded before output_mac replaced it.
	OutputDigest string `json:"output_digest,omitempty"`
	// Redacted lists the output paths replaced before storing the body.
	Redacted []string `json:"redacted,omitempty"`
	// Reason says why a cancelled call was cancelled (ReasonTaskRevoked,
	// ReasonCredentialRevoked, …).
	Reason string `json:"reason,omitempty"`
	// Tool and Operation repeat the call's, from its action.authorized,
	// so that the completion counts without the call held in memory.
	// Events recorded before they were written carry neither.
	Tool      string `json:"tool,omitempty"`
	Operation string `json:"operation,omitempty"`
}

// Statuses of ActionCompleted.
const (
	StatusOK    = "ok"
	StatusError = "error"
	// StatusCancelled is a call in flight when its task ended or its
	// credential was revoked, cut off by writ.
	StatusCancelled = "cancelled"
)
