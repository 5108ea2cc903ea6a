package event

import "time"

// PolicyDecided is policy.decided: a decision about a task, such as
// opening it or issuing its credential (decision_id and policy_version in
// the envelope; the decisions on tool calls are ActionDecided). Bodies:
// "input", the policy input document, so the decision can be replayed
// against the exact version.
type PolicyDecided struct {
	// Point is the decision point: "task", "exchange", ….
	Point string `json:"point"`
	// Engine is "rego" or "cedar".
	Engine string `json:"engine"`
	Outcome
}

// Outcome is a policy's answer, its members inline in the data.
type Outcome struct {
	// Effect is "allow", "deny" or "require_approval".
	Effect      string      `json:"effect"`
	Reasons     []string    `json:"reasons"`
	Obligations Obligations `json:"obligations"`
	PolicyIDs   []string    `json:"policy_ids"`
}

// Obligations are conditions a policy attaches to an allow or an approval:
// the caller must honour them. Package policy computes them (as
// policy.Obligations, this type); the decisions recorded in the ledger
// carry them as this object.
type Obligations struct {
	// MaxTTL caps a task's or credential's lifetime; zero means no cap. It
	// is not recorded: a decoded event has MaxTTLSeconds only.
	MaxTTL time.Duration `json:"-"`
	// MaxTTLSeconds mirrors MaxTTL in JSON.
	MaxTTLSeconds int64 `json:"max_ttl_seconds,omitempty"`
	// Approvals is how many distinct approvers a require_approval decision needs.
	Approvals int `json:"approvals,omitempty"`
	// Redact lists dotted paths into the input (e.g. "arguments.password")
	// whose values must not be stored in clear.
	Redact []string `json:"redact,omitempty"`
	// RecordOutput says whether the tool's output is stored as evidence; nil
	// means the caller's default (record).
	RecordOutput *bool `json:"record_output,omitempty"`
	// RequireBinding demands a sender-constrained credential (DPoP or mTLS):
	// at the exchange point no unbound token is issued, at the action point
	// a call with an unbound token is denied.
	RequireBinding bool `json:"require_binding,omitempty"`
}

// Bundle roles in PolicyLoaded and PolicyRejected.
const (
	RoleActive = "active"
	RoleShadow = "shadow"
)

// PolicyLoaded is policy.loaded: a bundle version compiled, its sources
// stored, recorded before it decides anything (policy_version in the
// envelope).
type PolicyLoaded struct {
	Version string `json:"version"`
	Engine  string `json:"engine"`
	// Role is RoleActive or RoleShadow.
	Role string `json:"role"`
	// Source is the bundle directory, or "embedded:<engine>" for the
	// default pack.
	Source string       `json:"source"`
	Files  []PolicyFile `json:"files"`
}

// PolicyFile is one file of a loaded bundle.
type PolicyFile struct {
	// Path is relative to the bundle directory, with forward slashes.
	Path string `json:"path"`
	// SHA256 is "sha256:" and the hex digest of the file's bytes.
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// PolicyRejected is policy.rejected: a bundle that could not be loaded;
// the version before it stays active.
type PolicyRejected struct {
	// Version and Engine are empty when the bundle failed before they
	// were known.
	Version string `json:"version,omitempty"`
	Engine  string `json:"engine,omitempty"`
	Role    string `json:"role"`
	Source  string `json:"source"`
	Error   string `json:"error"`
}

// ShadowDisagreed is policy.shadow_disagreed: the candidate bundle decided
// a request otherwise than the active one (joined to the active decision
// by the envelope's decision_id). Bodies: "input".
type ShadowDisagreed struct {
	Point     string     `json:"point"`
	Active    ShadowSide `json:"active"`
	Candidate ShadowSide `json:"candidate"`
}

// ShadowSide is one bundle's answer in a ShadowDisagreed.
type ShadowSide struct {
	Version string `json:"version"`
	Engine  string `json:"engine"`
	Outcome
}
