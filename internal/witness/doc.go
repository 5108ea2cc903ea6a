// Package witness gets the ledger's checkpoints cosigned by C2SP
// tlog-witness witnesses, so that the evidence holds even against whoever
// runs writ: a witness cosigns a checkpoint only if it is consistent with
// every checkpoint of the log it cosigned before, so a log rolled back or
// rewritten behind it is refused, and a cosignature's timestamp is time
// writ's operator cannot forge.
//
// A Loop submits the latest checkpoint to every configured witness off the
// request path (Client speaks the add-checkpoint protocol), verifies each
// C2SP tlog-cosignature/v1 cosignature it gets back (Key) and keeps it
// beside its checkpoint in the Store. A refusal is recorded as a
// witness.refused event and holds the witness until the loop starts again.
// Probe asks a witness, for `writ ledger verify`, whether the log still
// extends what it cosigned.
//
// See docs/witnessing.md for running witnesses next to writ and
// docs/ledger.md for how an auditor checks cosignatures.
package witness
