package evidence

import (
	"context"
	"sort"

	"github.com/writhq/writ/internal/ledger"
)

// Export's side of completeness: the task chains (ledger/chain.go) the
// bundle's events name are followed in the ledger, so that a bundle holds
// every link of its tasks' chains even where the task state and the query
// index did not select an event (an event imported without the index at
// hand, an erasure). Verify's side is complete.go.

// completeChains adds, for each of tasks, every event its chain names from
// its newest event in entries back to its first, and the parent's
// delegation each child's request names. It reports whether it added any.
func completeChains(ctx context.Context, st ledger.Store, entries *[]disclosed, tasks []string) (bool, error) {
	at := make(map[uint64]int, len(*entries))
	newest := map[string]uint64{}
	for k, e := range *entries {
		at[e.Index] = k
		if t := e.Event.TaskID; t != "" {
			newest[t] = max(newest[t], e.Index)
		}
	}
	added := false
	get := func(i uint64) (ledger.Entry, error) {
		if k, ok := at[i]; ok {
			return (*entries)[k].Entry, nil
		}
		ents, err := readEntries(ctx, st, []uint64{i})
		if err != nil {
			return ledger.Entry{}, err
		}
		at[i] = len(*entries)
		*entries = append(*entries, disclosed{Entry: ents[0]})
		added = true
		return ents[0], nil
	}
	for _, task := range tasks {
		cur, ok := newest[task]
		if !ok {
			continue
		}
		for {
			e, err := get(cur)
			if err != nil {
				return false, err
			}
			// A link to another task's event is the ledger's to answer
			// for: Verify reports it; the walk stops.
			if e.Event.TaskID != task {
				break
			}
			if d := e.Event.Delegation; d != nil {
				if _, err := get(*d); err != nil {
					return false, err
				}
			}
			if e.Event.Prev == nil {
				break
			}
			cur = *e.Event.Prev
		}
	}
	if added {
		sort.Slice(*entries, func(a, b int) bool { return (*entries)[a].Index < (*entries)[b].Index })
	}
	return added, nil
}
