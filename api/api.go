// Package api holds writ's wire types: the JSON bodies its HTTP API takes and
// returns. Field names are a contract, documented with each endpoint in the
// repository's docs (docs/tasks.md, docs/credentials.md, docs/evidence.md,
// docs/ledger.md): fields are added, never renamed.
package api

import "encoding/json"

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	// Line is the 1-based line of an NDJSON request body the error is about.
	Line int `json:"line,omitempty"`
}

// Event is an event to append, as `writ ledger append` reads it (one per
// line) and POST /v1/ledger/events takes it. The ledger sets the time.
type Event struct {
	Type          string          `json:"type"`
	TaskID        string          `json:"task_id,omitempty"`
	Principal     string          `json:"principal,omitempty"`
	Agent         string          `json:"agent,omitempty"`
	DecisionID    string          `json:"decision_id,omitempty"`
	PolicyVersion string          `json:"policy_version,omitempty"`
	JTI           string          `json:"jti,omitempty"`
	TraceID       string          `json:"trace_id,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	// Bodies are payloads committed to rather than stored in the leaf.
	Bodies map[string]string `json:"bodies,omitempty"`
}

// Appended answers an append.
type Appended struct {
	Index uint64 `json:"index"`
}

// AppendedAll answers an append of several events (an NDJSON body): they
// hold the consecutive indexes First to First+Count-1, in input order.
type AppendedAll struct {
	First uint64 `json:"first"`
	Count int    `json:"count"`
}

// Erase asks to erase one body of one event.
type Erase struct {
	Index  uint64 `json:"index"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Force erases a body under a legal hold; the erasure records the
	// hold it overrides.
	Force bool `json:"force,omitempty"`
}
