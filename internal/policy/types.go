package policy

import (
	"errors"
	"fmt"

	"github.com/writhq/writ/internal/event"
)

// Point names where in a request's life a decision is made.
type Point string

// Decision points.
const (
	// PointTask decides whether a task may be opened (and whether it needs approval).
	PointTask Point = "task"
	// PointExchange decides whether a task credential may be issued.
	PointExchange Point = "exchange"
	// PointAction decides one tool call.
	PointAction Point = "action"
	// PointList decides whether one tool is visible in a tool listing.
	PointList Point = "list"
)

// Points lists every decision point.
var Points = []Point{PointTask, PointExchange, PointAction, PointList}

// ParsePoint returns the point named s, or an error naming the valid ones.
func ParsePoint(s string) (Point, error) {
	for _, p := range Points {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown decision point %q: want task, exchange, action or list", s)
}

// Effect is the outcome of a decision.
type Effect string

// Effects.
const (
	Allow           Effect = "allow"
	Deny            Effect = "deny"
	RequireApproval Effect = "require_approval"
)

func parseEffect(s string) (Effect, bool) {
	switch Effect(s) {
	case Allow, Deny, RequireApproval:
		return Effect(s), true
	}
	return "", false
}

// Obligations are conditions attached to an allow or an approval: the caller
// must honour them. Decisions record them in the ledger, so the type is
// the events' (package event).
type Obligations = event.Obligations

// Result is what an engine returns for one evaluation.
type Result struct {
	Effect      Effect      `json:"effect"`
	Reasons     []string    `json:"reasons"`
	Obligations Obligations `json:"obligations"`
	// PolicyIDs are the policies that determined the effect.
	PolicyIDs []string `json:"policy_ids"`
}

// Decision is the answer to one request, with what is needed to record and
// replay it.
type Decision struct {
	// ID is a fresh random identifier, "dec_" and 26 base32 characters.
	ID            string `json:"decision_id"`
	Point         Point  `json:"point"`
	PolicyVersion string `json:"policy_version"`
	Engine        string `json:"engine"`
	Result
	// Shadow is the candidate bundle's answer, when one is configured. It is
	// never enforced.
	Shadow *ShadowResult `json:"shadow,omitempty"`
}

// Allowed reports whether the decision lets the request through now.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// ShadowResult is a candidate bundle's answer to the same request.
type ShadowResult struct {
	PolicyVersion string `json:"policy_version"`
	Engine        string `json:"engine"`
	Result
	// Agrees is true when effect, reasons, obligations and policy IDs match
	// the active decision.
	Agrees bool `json:"agrees"`
}

// Engine names.
const (
	EngineRego  = "rego"
	EngineCedar = "cedar"
)

// Errors returned by this package.
var (
	// ErrNotFound: a SourceStore has no sources for the version asked.
	ErrNotFound = errors.New("policy version not found")
	// ErrCompile wraps every reason a bundle is rejected at load.
	ErrCompile = errors.New("policy bundle rejected")
	// ErrClosed: the Policy was closed.
	ErrClosed = errors.New("policy closed")
)

// policyError builds the fail-closed result for an evaluation failure.
func policyError(format string, a ...any) Result {
	return Result{
		Effect:    Deny,
		Reasons:   []string{"policy error: " + fmt.Sprintf(format, a...)},
		PolicyIDs: []string{},
	}
}
