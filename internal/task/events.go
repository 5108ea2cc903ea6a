package task

import (
	"encoding/json"

	"github.com/writhq/writ/internal/event"
)

// The data of the events this package writes are package event's types;
// docs/tasks.md documents their fields.

// Credential revocation and end reasons, as recorded (package event).
const (
	ReasonTaskCompleted     = event.ReasonTaskCompleted
	ReasonTaskExpired       = event.ReasonTaskExpired
	ReasonTaskRevoked       = event.ReasonTaskRevoked
	ReasonParentEnded       = event.ReasonParentEnded
	ReasonCredentialRevoked = event.ReasonCredentialRevoked
	ReasonSelfApproval      = event.ReasonSelfApproval
	ReasonApprovalTTL       = event.ReasonApprovalTTL
	// ByWrit is the actor of changes writ makes on its own.
	ByWrit = event.ByWrit
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("task: encoding event data: " + err.Error())
	}
	return b
}
