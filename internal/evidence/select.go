package evidence

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/task"
)

// Which events go into a bundle.

// selectEvents reads the chain's events, keeping the ancestors' lifecycle
// and, within a window, only the actions inside it.
func selectEvents(ctx context.Context, st ledger.Store, c task.Chain, opts Options) ([]disclosed, error) {
	inChain, ancestor := map[string]bool{}, map[string]bool{}
	for _, id := range c.Tasks {
		inChain[id] = true
	}
	for _, id := range c.Ancestors {
		inChain[id], ancestor[id] = true, true
	}
	idx := slices.Concat(c.Events, c.AncestorEvents)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	keptActions := map[string]bool{}
	var out []disclosed
	ents, err := readEntries(ctx, st, idx)
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		d, _ := event.Read(ent.Event)
		keep := true
		if ent.Event.Type == ledger.TypeBodyErased {
			// An erasure comes with the body it erases (disclose), or as
			// a link of its task's chain (completeChains).
			continue
		}
		if ancestor[ent.Event.TaskID] {
			child, delegated := d.(event.TaskDelegated)
			keep = lifecycle(d) && (!delegated || inChain[child.Child])
		} else if isAction(d) {
			switch d := d.(type) {
			case event.ActionCompleted:
				keep = keptActions[d.ActionID]
			case event.ActionDecided:
				if outside(ent.Event.Time, opts) {
					keep = false
				} else if ent.Event.Type == ledger.TypeActionAuthorized {
					keptActions[d.ActionID] = true
				}
			default:
				keep = !outside(ent.Event.Time, opts)
			}
		}
		if keep {
			out = append(out, disclosed{Entry: ent})
		}
	}
	return out, nil
}

// readEntries reads and parses the leaves at idx (ascending), runs of
// neighbours together. A leaf missing or unparsable is tampering.
func readEntries(ctx context.Context, st ledger.Store, idx []uint64) ([]ledger.Entry, error) {
	out := make([]ledger.Entry, 0, len(idx))
	for k := 0; k < len(idx); {
		end := k + 1
		for end < len(idx) && idx[end] == idx[end-1]+1 && end-k < 4096 {
			end++
		}
		leaves, err := st.ReadLeaves(ctx, idx[k], idx[end-1]+1)
		if err != nil {
			return nil, err
		}
		if len(leaves) != end-k {
			return nil, fmt.Errorf("%w: leaf %d is missing", ledger.ErrTampered, idx[k]+uint64(len(leaves)))
		}
		for j, l := range leaves {
			ent, err := ledger.ParseLeaf(idx[k+j], slices.Clone(l))
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ledger.ErrTampered, err)
			}
			out = append(out, ent)
		}
		k = end
	}
	return out, nil
}

// withPolicyLoads adds, for each policy version that decided an event, the
// last policy.loaded of that version before its first decision: when the
// version became active, and that it was recorded before it decided.
func withPolicyLoads(ctx context.Context, st ledger.Store, ix *query.Index, entries []disclosed) ([]disclosed, error) {
	first := map[string]uint64{}
	for _, e := range entries {
		if pv := e.Event.PolicyVersion; pv != "" {
			if _, ok := first[pv]; !ok {
				first[pv] = e.Index
			}
		}
	}
	var add []uint64
	for pv, before := range first {
		p, err := ix.Events(ctx, query.Filter{Type: ledger.TypePolicyLoaded, PolicyVersion: pv, Limit: query.MaxLimit})
		if err != nil {
			return nil, err
		}
		var last *uint64
		for _, ev := range p.Events {
			if ev.Index < before {
				i := ev.Index
				last = &i
			}
		}
		if last != nil {
			add = append(add, *last)
		}
	}
	if len(add) == 0 {
		return entries, nil
	}
	slices.Sort(add)
	ents, err := readEntries(ctx, st, add)
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		entries = append(entries, disclosed{Entry: ent})
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].Index < entries[b].Index })
	return entries, nil
}

// outside reports whether t is outside the window opts asks for.
func outside(t time.Time, opts Options) bool {
	return !opts.From.IsZero() && t.Before(opts.From) || !opts.To.IsZero() && t.After(opts.To)
}

// lifecycle reports whether an event, by its data d, shapes a task's state
// rather than recording one of its actions.
func lifecycle(d any) bool {
	switch d := d.(type) {
	case event.TaskRequested, event.TaskActivated, event.TaskDenied, event.TaskEnded, event.TaskDelegated,
		event.TaskHeld, event.TaskReleased:
		return true
	case event.PolicyDecided:
		return d.Point == string(policy.PointTask)
	case event.ApprovalRequested:
		return d.Kind == event.KindTask
	case event.ApprovalDecided:
		return d.Kind == event.KindTask
	}
	return false
}

// isAction reports whether an event, by its data d, records one action (or
// refusal) that a time window may leave out.
func isAction(d any) bool {
	switch d := d.(type) {
	case event.ActionDecided, event.ActionCompleted, event.Rejection:
		return true
	case event.PolicyDecided:
		return d.Point == string(policy.PointAction)
	}
	return false
}
