// Package evidence builds and checks evidence bundles: a zip that carries
// one task's chain of events out of writ, with everything needed to verify
// it offline and without trusting writ — the signed checkpoint and its
// verifier key, a C2SP tlog-proof per event, the disclosed payloads with
// their salts, and the exact policy sources that decided — together with
// readable and machine-readable views of it: a compliance mapping
// (controls.csv), OCSF records (ocsf.jsonl) and a self-contained report
// page (report.html).
//
// Export writes a bundle from a ledger store; Verify checks one, reading
// nothing but the bundle. docs/evidence.md describes the layout.
package evidence
