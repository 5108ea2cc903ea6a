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
	// Retention is the rule that erased the body, when Reason is
	// ReasonRetention: writ erased it on its own, once the rule's period
	// had passed.
	Retention *RetentionRule `json:"retention,omitempty"`
	// OverridesHold is the index of the task.held event whose legal hold
	// this erasure was forced through.
	OverridesHold *uint64 `json:"overrides_hold,omitempty"`
}

// ReasonRetention is the Reason of an erasure writ made by its retention
// rules.
const ReasonRetention = "retention"

// RetentionRule is the rule a retention erasure applied, as configured
// (docs/retention.md): the event type and body it names, the data class
// when it names one, and how long such a body is kept (as written in the
// configuration, such as "180d"). Minimum is the configured minimum.
type RetentionRule struct {
	Type      string `json:"type"`
	Body      string `json:"body,omitempty"`
	DataClass string `json:"data_class,omitempty"`
	Keep      string `json:"keep"`
	Minimum   string `json:"minimum"`
}

// Erasure is one body to erase and what its ledger.body_erased event
// records.
type Erasure struct {
	Ref    BodyRef
	Reason string
	// Principal is who asked; empty for writ itself.
	Principal     string
	Retention     *RetentionRule
	OverridesHold *uint64
}

// Erase deletes one stored body and, in the same transaction, appends a
// ledger.body_erased event naming it. The leaf that committed to the body is
// untouched, so the tree still verifies; the erasure itself is evidence.
// The erasure event belongs to the task of the event it erases a body of
// (if any), so it joins that task's chain. It returns the index of the
// erasure event. Errors: ErrNotFound when the body does not exist (never
// stored, or already erased).
func (l *Ledger) Erase(ctx context.Context, ref BodyRef, reason, principal string) (uint64, error) {
	return l.EraseAll(ctx, []Erasure{{Ref: ref, Reason: reason, Principal: principal}})
}

// EraseAll is Erase for several bodies in one transaction: all of them are
// erased, each with its own ledger.body_erased event in the order given, or
// none is. It returns the index of the first erasure event. Errors:
// ErrNotFound when any of the bodies does not exist, or is named twice.
func (l *Ledger) EraseAll(ctx context.Context, erasures []Erasure) (uint64, error) {
	if len(erasures) == 0 {
		return 0, &ValidationError{Reason: "nothing to erase"}
	}
	events := make([]Event, 0, len(erasures))
	refs := make([]BodyRef, 0, len(erasures))
	seen := map[BodyRef]bool{}
	for _, x := range erasures {
		ev, err := l.erasureEvent(ctx, x)
		if err != nil {
			return 0, err
		}
		if seen[x.Ref] {
			return 0, fmt.Errorf("body %q of event %d is named twice: %w", x.Ref.Name, x.Ref.Index, ErrNotFound)
		}
		seen[x.Ref] = true
		events = append(events, ev)
		refs = append(refs, x.Ref)
	}
	return l.append(ctx, events, refs)
}

// erasureEvent checks that x's body is stored and returns the event
// recording its erasure.
func (l *Ledger) erasureEvent(ctx context.Context, x Erasure) (Event, error) {
	ref := x.Ref
	if x.Reason == "" {
		return Event{}, &ValidationError{Field: "reason", Reason: "an erasure needs a reason"}
	}
	if len(x.Reason) > 4096 {
		return Event{}, &ValidationError{Field: "reason", Reason: "longer than 4096 bytes"}
	}
	leaves, err := l.cfg.Store.ReadLeaves(ctx, ref.Index, ref.Index+1)
	if err != nil {
		return Event{}, err
	}
	if len(leaves) == 0 {
		return Event{}, fmt.Errorf("event %d: %w", ref.Index, ErrNotFound)
	}
	ent, err := ParseLeaf(ref.Index, leaves[0])
	if err != nil {
		return Event{}, err
	}
	c, ok := ent.Commitments[ref.Name]
	if !ok {
		return Event{}, fmt.Errorf("event %d has no body %q: %w", ref.Index, ref.Name, ErrNotFound)
	}
	if _, err := l.cfg.Store.ReadBody(ctx, ref); errors.Is(err, ErrNotFound) {
		return Event{}, fmt.Errorf("body %q of event %d is already erased: %w", ref.Name, ref.Index, ErrNotFound)
	} else if err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(ErasedBody{Index: ref.Index, Name: ref.Name, Commitment: c, Reason: x.Reason,
		Retention: x.Retention, OverridesHold: x.OverridesHold})
	if err != nil {
		return Event{}, err
	}
	return Event{Type: TypeBodyErased, TaskID: ent.Event.TaskID, Principal: x.Principal, Data: data}, nil
}
