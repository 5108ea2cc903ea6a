package event

import "github.com/writhq/writ/internal/ledger"

// BodyErased is ledger.body_erased: a stored body deleted on request. The
// ledger writes it and its verifier reads it, so the type is the ledger's.
type BodyErased = ledger.ErasedBody

// LedgerStarted is ledger.started, a type reserved for the start of a
// log. writ does not write it yet; its data would be empty.
type LedgerStarted struct{}
