package evidence

import (
	"context"
	"fmt"
	"slices"
	"sort"

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
		d := fields(ent.Event.Data)
		keep := true
		if ent.Event.Type == ledger.TypeBodyErased {
			// An erasure comes with the body it erases (disclose), or as
			// a link of its task's chain (completeChains).
			continue
		}
		if ancestor[ent.Event.TaskID] {
			keep = lifecycle(ent.Event.Type, d) && (ent.Event.Type != ledger.TypeTaskDelegated || inChain[d.str("child_task_id")])
		} else if isAction(ent.Event.Type, d) {
			switch {
			case ent.Event.Type == ledger.TypeActionCompleted:
				keep = keptActions[d.str("action_id")]
			case !opts.From.IsZero() && ent.Event.Time.Before(opts.From), !opts.To.IsZero() && ent.Event.Time.After(opts.To):
				keep = false
			case ent.Event.Type == ledger.TypeActionAuthorized:
				keptActions[d.str("action_id")] = true
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

// lifecycle reports whether an event shapes a task's state rather than
// recording one of its actions.
func lifecycle(typ string, d data) bool {
	switch typ {
	case ledger.TypeTaskRequested, ledger.TypeTaskActivated, ledger.TypeTaskDenied, ledger.TypeTaskCompleted,
		ledger.TypeTaskExpired, ledger.TypeTaskRevoked, ledger.TypeTaskDelegated:
		return true
	case ledger.TypePolicyDecided:
		return d.str("point") == string(policy.PointTask)
	case ledger.TypeApprovalRequested, ledger.TypeApprovalGranted, ledger.TypeApprovalDenied:
		return d.str("kind") == task.KindTask
	}
	return false
}

// isAction reports whether an event records one action (or refusal) that a
// time window may leave out.
func isAction(typ string, d data) bool {
	switch typ {
	case ledger.TypeActionAuthorized, ledger.TypeActionDenied, ledger.TypeActionCompleted, ledger.TypeAuthRejected:
		return true
	case ledger.TypePolicyDecided:
		return d.str("point") == string(policy.PointAction)
	}
	return false
}
