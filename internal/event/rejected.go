package event

import "time"

// auth.rejected has three shapes, told apart by their members: a
// RejectionSummary has the reason ReasonSummary, a RequestRejected the
// member "method", and an AuthRejected neither. Each is a Rejection.

// Rejection is the data of an auth.rejected event, of any shape.
type Rejection interface {
	// Refusal returns the reason and the detail every shape has.
	Refusal() (reason, detail string)
}

var (
	_ Rejection = AuthRejected{}
	_ Rejection = RequestRejected{}
	_ Rejection = RejectionSummary{}
)

func (r AuthRejected) Refusal() (reason, detail string)     { return r.Reason, r.Detail }
func (r RequestRejected) Refusal() (reason, detail string)  { return r.Reason, r.Detail }
func (r RejectionSummary) Refusal() (reason, detail string) { return r.Reason, r.Detail }

// AuthRejected is auth.rejected for a refusal the task service records: a
// task credential refused at a decision point or by the gateway, an
// approver's own approval (ReasonSelfApproval), ….
type AuthRejected struct {
	// Reason is a short code (credential_revoked, task_not_active,
	// self_approval, …); Detail a sentence without secrets.
	Reason     string `json:"reason"`
	Detail     string `json:"detail,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
}

// RequestRejected is auth.rejected for a request the HTTP edge refused
// for its credential: a token that did not verify, or a principal without
// the role. It never holds the token, only its SHA-256 fingerprint.
type RequestRejected struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// Issuer and Subject are as the token claimed them: unverified unless
	// SubjectVerified.
	Issuer          string `json:"issuer,omitempty"`
	Subject         string `json:"subject,omitempty"`
	SubjectVerified bool   `json:"subject_verified"`
	TokenSHA256     string `json:"token_sha256,omitempty"`
	RemoteAddr      string `json:"remote_addr,omitempty"`
	Method          string `json:"method"`
	Path            string `json:"path"`
	// RequiredRoles are the roles the request needed; PrincipalRoles,
	// for a principal refused for lack of them, the roles it had.
	RequiredRoles  []string `json:"required_roles,omitempty"`
	PrincipalRoles []string `json:"principal_roles,omitempty"`
}

// ReasonSummary is the Reason of a RejectionSummary.
const ReasonSummary = "summary"

// RejectionSummary is the auth.rejected event that stands for the
// refusals from one source, in one interval, past those recorded one by
// one. Reason and Detail are there as in every auth.rejected event, so
// readers that show those need nothing new.
type RejectionSummary struct {
	// Reason is always ReasonSummary.
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// Source is the client address (an IPv6 /64), or "*" for addresses
	// past rate_limits.rejections.max_sources.
	Source string `json:"source"`
	// Count is how many refusals this event stands for; Recorded how many
	// more from the source were recorded one by one in the same interval.
	Count    int64 `json:"count"`
	Recorded int64 `json:"recorded"`
	// First and Last are the times of the first and last refusal counted.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Reasons counts the refusals by reason (rate_limited: refused before
	// the credential was checked, the source being over its budget).
	Reasons map[string]int64 `json:"reasons"`
	// Interval is rate_limits.rejections.interval, e.g. "1m0s".
	Interval string `json:"interval"`
}
