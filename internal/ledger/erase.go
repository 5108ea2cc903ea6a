package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErasedBody is the data of a ledger.body_erased event.
type ErasedBody struct {
	Index      uint64 `json:"index"`
	Name       string `json:"name"`
	Commitment string `json:"commitment"`
	Reason     string `json:"reason"`
}

// Erase deletes one stored body and, in the same transaction, appends a
// ledger.body_erased event naming it. The leaf that committed to the body is
// untouched, so the tree still verifies; the erasure itself is evidence.
// The erasure event belongs to the task of the event it erases a body of
// (if any), so it joins that task's chain. It returns the index of the
// erasure event. Errors: ErrNotFound when the body does not exist (never
// stored, or already erased).
func (l *Ledger) Erase(ctx context.Context, ref BodyRef, reason, principal string) (uint64, error) {
	if reason == "" {
		return 0, &ValidationError{Field: "reason", Reason: "an erasure needs a reason"}
	}
	if len(reason) > 4096 {
		return 0, &ValidationError{Field: "reason", Reason: "longer than 4096 bytes"}
	}
	leaves, err := l.cfg.Store.ReadLeaves(ctx, ref.Index, ref.Index+1)
	if err != nil {
		return 0, err
	}
	if len(leaves) == 0 {
		return 0, fmt.Errorf("event %d: %w", ref.Index, ErrNotFound)
	}
	ent, err := ParseLeaf(ref.Index, leaves[0])
	if err != nil {
		return 0, err
	}
	c, ok := ent.Commitments[ref.Name]
	if !ok {
		return 0, fmt.Errorf("event %d has no body %q: %w", ref.Index, ref.Name, ErrNotFound)
	}
	if _, err := l.cfg.Store.ReadBody(ctx, ref); errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("body %q of event %d is already erased: %w", ref.Name, ref.Index, ErrNotFound)
	} else if err != nil {
		return 0, err
	}
	data, err := json.Marshal(ErasedBody{Index: ref.Index, Name: ref.Name, Commitment: c, Reason: reason})
	if err != nil {
		return 0, err
	}
	return l.append(ctx, []Event{{Type: TypeBodyErased, TaskID: ent.Event.TaskID, Principal: principal, Data: data}}, []BodyRef{ref})
}
