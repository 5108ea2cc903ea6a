package task

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"github.com/writhq/writ/internal/event"
)

// Keyed digests. A leaf never holds a plain hash of a body: anyone holding
// the leaf could confirm a redacted or erased value by hashing guesses.
// Where writ must recognise a body again (a step-up's arguments, when the
// approved call is retried) or bind one it does not keep (an output the
// policy said not to record), the leaf holds an HMAC-SHA256 under
// Config.DigestKey, which is derived from the ledger's signing key and never
// leaves writ. docs/design/ledger.md says why.

// MACPrefix starts every keyed digest writ records.
const MACPrefix = "hmac-sha256:"

// MinDigestKeyBytes is the shortest Config.DigestKey accepted.
const MinDigestKeyBytes = 32

// Labels keep the uses of the key apart.
const (
	macArguments = "writ/arguments/v1"
	macOutput    = "writ/output/v1"
)

// mac returns MACPrefix + hex(HMAC-SHA256(DigestKey, label 0 taskID 0 body)).
// The task ID is in the input so that equal bodies in two tasks do not show
// as equal digests. Every call takes one; the keyed hashes are reused.
func (s *Service) mac(label, taskID string, canonical []byte) string {
	h, _ := s.macs.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, s.cfg.DigestKey)
	}
	var buf [128]byte
	head := append(append(append(append(buf[:0], label...), 0), taskID...), 0)
	h.Write(head)
	h.Write(canonical)
	var sum [sha256.Size]byte
	out := append(buf[:0], MACPrefix...)
	out = hex.AppendEncode(out, h.Sum(sum[:0]))
	h.Reset()
	s.macs.Put(h)
	return string(out)
}

// stepUpCall is what a step-up approver is shown of the call, and so what a
// step-up is bound to besides its task and expiry: a call that differs in
// any of these is another call, which needs its own approval.
type stepUpCall struct {
	Tool, Operation, Resource, DataClass string
	// ArgsMAC is the keyed digest of the call's original arguments.
	ArgsMAC string
	// PolicyVersion is the version whose decision asked for the approval.
	PolicyVersion string
}

// call is the call a step-up approval covers.
func (a *Approval) call() stepUpCall {
	return stepUpCall{Tool: a.Tool, Operation: a.Operation, Resource: a.Resource, DataClass: a.DataClass,
		ArgsMAC: a.ArgsMAC, PolicyVersion: a.PolicyVersion}
}

// binds reports whether a is a step-up of task taskID for exactly c. A
// step-up recorded before args_mac existed (LegacyDigest set instead)
// binds no new call.
func (a *Approval) binds(taskID string, c stepUpCall) bool {
	return a.Kind == KindStepUp && a.TaskID == taskID && a.ArgsMAC != "" && a.call() == c
}

// actionCall is the call an action.authorized event records.
func actionCall(d event.ActionDecided, policyVersion string) stepUpCall {
	return stepUpCall{Tool: d.Tool, Operation: d.Operation, Resource: d.Resource, DataClass: d.DataClass,
		ArgsMAC: d.ArgsMAC, PolicyVersion: policyVersion}
}
