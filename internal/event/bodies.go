package event

import (
	"slices"

	"github.com/writhq/writ/internal/ledger"
)

// bodies are the payload bodies each type writ writes may carry beside
// its leaf (docs/ledger.md, "Payload commitments").
var bodies = map[string][]string{
	ledger.TypeTaskRequested:     {"intent"},
	ledger.TypePolicyDecided:     {"input"},
	ledger.TypePolicyShadow:      {"input"},
	ledger.TypeActionAuthorized:  {"arguments", "input"},
	ledger.TypeActionDenied:      {"arguments", "input"},
	ledger.TypeApprovalRequested: {"arguments"},
	ledger.TypeActionCompleted:   {"output"},
}

// Bodies returns the names of the bodies events of type typ may carry,
// sorted: none for a type whose events carry none, or a type writ does not
// write (an imported event's bodies are its sender's).
func Bodies(typ string) []string { return slices.Clone(bodies[typ]) }
