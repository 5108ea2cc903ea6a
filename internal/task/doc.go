// Package task runs writ's evidence chain from intent to execution: tasks
// opened by humans, decided by policy, approved by other humans, the
// credentials an agent holds for them, and every tool call authorized and
// recorded under them.
//
// The ledger is the source of truth. Every change is appended as events
// first (in one transaction when it takes several), and only then applied to
// State, an in-memory projection that Apply rebuilds from the events alone.
// At start the Service replays the ledger — from its latest snapshot of
// State when that checks against the ledger (snapshot.go), from the first
// event otherwise — so State after a restart is the State before it. The tasks, approvals and credentials tables in the
// store (SQLite or PostgreSQL, beside the ledger) are a second projection, written after each change; the
// Service compares them with the replay at start and refuses a store whose
// rows disagree with what the ledger implies (see CheckProjections).
//
// Fail closed: if an event cannot be made durable, nothing changes and an
// authorization is denied, never allowed.
package task
