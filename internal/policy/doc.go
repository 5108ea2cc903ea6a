// Package policy decides whether an agent may open a task, obtain a
// credential, call a tool, or see a tool in a listing.
//
// A policy bundle is a directory of Rego or Cedar sources. It is compiled once
// per load into an [Engine]; [Policy] holds the active engine, reloads it on a
// file change or an explicit [Policy.Reload], keeps a candidate ("shadow")
// bundle beside it, and fails closed: an evaluation error, a timeout or an
// undefined result is a deny whose reason says "policy error: …".
//
// Every bundle has a version, sha256 over its files and engine name (see
// [Version]); the exact sources of every version loaded are kept in a
// [SourceStore], so a past decision can be replayed with [Replay] against the
// policy that made it.
//
// Both engines see the same input document ([Input]) with facts derived in Go
// ([Derived]) — scope glob matches, data class levels, delegation narrowing —
// because Cedar cannot match patterns that are data. docs/policy.md describes
// the documents, the obligations and the default pack.
package policy
