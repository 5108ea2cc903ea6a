package task

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/resource"
)

// Status is the state of a task. requested is transient: a task is requested and decided
// in one ledger transaction, so it is never observed outside Apply.
type Status string

// Task states.
const (
	StateRequested       Status = "requested"
	StatePendingApproval Status = api.StatePendingApproval
	StateActive          Status = api.StateActive
	StateDenied          Status = api.StateDenied
	StateCompleted       Status = api.StateCompleted
	StateExpired         Status = api.StateExpired
	StateRevoked         Status = api.StateRevoked
)

// Ended reports whether no further change can happen to a task in s.
func (s Status) Ended() bool {
	switch s {
	case StateDenied, StateCompleted, StateExpired, StateRevoked:
		return true
	}
	return false
}

// Approval kinds (package event).
const (
	KindTask   = event.KindTask
	KindStepUp = event.KindStepUp
)

// Scope is what a task may touch; see api.Scope. Tools, operations and
// environments are glob patterns where '*' matches any run of characters;
// resources are URI patterns, normalized and matched by package resource.
type Scope api.Scope

// Limits on what a scope and a task may carry.
const (
	MaxIntentBytes     = 64 << 10
	MaxPatterns        = 64
	MaxPatternBytes    = 512
	MinTTL             = 10 * time.Second
	MaxTTL             = 7 * 24 * time.Hour
	MaxReasonBytes     = 1024
	DefaultTTL         = 15 * time.Minute
	DefaultApprovalTTL = time.Hour
)

// Validate reports a scope that cannot be recorded or enforced.
func (s Scope) Validate() error {
	for _, f := range []struct {
		name string
		v    []string
	}{{"tools", s.Tools}, {"resources", s.Resources}, {"operations", s.Operations}, {"environments", s.Environments}} {
		if len(f.v) == 0 {
			return invalid("scope.%s must name at least one pattern", f.name)
		}
		if len(f.v) > MaxPatterns {
			return invalid("scope.%s has %d patterns; the limit is %d", f.name, len(f.v), MaxPatterns)
		}
		for _, p := range f.v {
			if strings.TrimSpace(p) == "" {
				return invalid("scope.%s holds an empty pattern", f.name)
			}
			if len(p) > MaxPatternBytes {
				return invalid("scope.%s holds a pattern longer than %d bytes", f.name, MaxPatternBytes)
			}
		}
	}
	if policy.DataClassLevel(s.DataClass) < 0 {
		return invalid("scope.data_class %q: want public, internal, confidential or restricted", s.DataClass)
	}
	return validateLimits(s.Limits)
}

// Hash returns "sha256:" + hex(sha256(RFC 8785 JSON of s)): what approvals
// bind to.
func (s Scope) Hash() string {
	b, err := jcs.Marshal(api.Scope(s))
	if err != nil {
		// A Scope is strings only; canonicalization cannot fail.
		panic(fmt.Sprintf("task: canonicalizing a scope: %v", err))
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Within reports whether every request s admits, outer admits too: the
// data class is not higher, and each pattern of s is matched by a pattern
// of outer ('*' in s taken literally, which makes the test sound); resource
// patterns in normal form, by resource.Within; and s keeps every limit of
// outer, at most as high (policy.LimitsWithin).
func (s Scope) Within(outer Scope) bool {
	li, lo := policy.DataClassLevel(s.DataClass), policy.DataClassLevel(outer.DataClass)
	if li < 0 || lo < 0 || li > lo {
		return false
	}
	within := func(inner, outer []string) bool {
		for _, p := range inner {
			if !slices.ContainsFunc(outer, func(o string) bool { return policy.Match(o, p) }) {
				return false
			}
		}
		return true
	}
	return within(s.Tools, outer.Tools) && resource.Within(s.Resources, outer.Resources) &&
		within(s.Operations, outer.Operations) && within(s.Environments, outer.Environments) &&
		policy.LimitsWithin(s.Limits, outer.Limits)
}

func (s Scope) policy() policy.Scope { return policy.Scope(s) }

// Task is one task as the ledger's events make it.
type Task struct {
	ID        string
	State     Status
	Requester string
	Agent     string
	Intent    string
	Scope     Scope
	ScopeHash string
	TTL       time.Duration
	Parent    string
	Children  []string
	// Environment is the runtime environment the task was opened in.
	Environment string

	// The task decision.
	DecisionID        string
	PolicyVersion     string
	Reasons           []string
	ApprovalsRequired int
	// ApprovalID names the task's approval request, when it needed one.
	ApprovalID string

	CreatedAt time.Time
	ExpiresAt time.Time // zero until active
	EndedAt   time.Time // zero until ended
	EndReason string

	// RequestedIndex is the ledger index of task.requested.
	RequestedIndex uint64
	// Events are the ledger indexes of every event of the task, in the
	// order applied: set on the copies Get returns; State keeps them
	// packed (eventList).
	Events []uint64
	// Credentials are the JTIs issued for the task, in issue order.
	Credentials []string
	// Hold is the task's own legal hold while one holds (hold.go).
	Hold *Hold
}

// Approval is an approval request and the decisions on it.
type Approval struct {
	ID            string
	Kind          string
	TaskID        string
	ScopeHash     string // task approvals
	PolicyVersion string
	Required      int
	ExpiresAt     time.Time
	Reasons       []string
	// Step-ups only: the exact call the approval covers (see stepUpCall),
	// and its arguments as recorded (redacted).
	Tool, Operation, Resource, DataClass string
	ArgsMAC                              string
	Arguments                            json.RawMessage
	// LegacyDigest is the unsalted args_digest of a step-up recorded before
	// args_mac replaced it; such a step-up is bound only to its task, tool
	// and that digest, and no new call matches it.
	LegacyDigest string
	// RequestedIndex is the ledger index of approval.requested.
	RequestedIndex uint64

	Decisions []Decision
	// Status is pending, granted or denied.
	Status string
	// UsedBy is the action that consumed a granted step-up.
	UsedBy string
}

// Approval statuses.
const (
	ApprovalPending = "pending"
	ApprovalGranted = "granted"
	ApprovalDenied  = "denied"
)

// Granted counts the distinct approvers who approved.
func (a *Approval) Granted() int {
	n := 0
	for _, d := range a.Decisions {
		if d.Decision == "approve" {
			n++
		}
	}
	return n
}

// Decision is one approver's decision on an approval.
type Decision struct {
	Approver string
	Decision string // approve or deny
	Reason   string
	Time     time.Time
}

// Credential is a task credential the ledger recorded as issued.
type Credential struct {
	JTI       string
	TaskID    string
	Agent     string
	Subject   string
	ExpiresAt time.Time
	Binding   string
	Revoked   bool
	RevokedAt time.Time
}

// VerifiedCredential is a task credential whose signature, expiry, binding
// and audience the credential layer has already checked. Authorize and
// RecordResult trust these fields and check the rest against State.
type VerifiedCredential struct {
	JTI     string
	TaskID  string
	Agent   string
	Subject string
	Expiry  time.Time
	// Binding is "dpop", "mtls" or "none".
	Binding string
	// ActChain is the actor chain, outermost first.
	ActChain []string
}

// newID returns prefix + "_" + 26 lowercase base32 characters of 128 random
// bits (formatID).
func newID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return formatID(prefix, b)
}
