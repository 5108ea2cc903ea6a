package query

import (
	"sync"

	"github.com/writhq/writ/internal/ledger"
)

// maxRecent is the most committed events the index holds for its tailer.
// At the decision API's peak that is about a second of commits; a tailer
// further behind reads from the store.
const maxRecent = 16384

// recent holds the events the ledger has just committed, handed over by
// its commit hook (Committed), so that the tailer indexes them without
// reading their leaves back from the store and parsing them: that was a
// third of the index's cost. It is a shortcut only. What it does not hold
// (events another replica committed, events from before this process, or
// more than maxRecent while the tailer is behind) the tailer reads from
// the store as before.
type recent struct {
	mu    sync.Mutex
	start uint64         // the index of ents[0]
	ents  []ledger.Event // committed events from start on, in index order, without bodies
}

// Committed hands the index events the ledger has just made durable, from
// index first on: it must be called only after their commit, in index
// order, with the events as committed (ledger.Config.OnCommit). It does not
// wait for the index.
func (ix *Index) Committed(first uint64, events []ledger.Event) {
	ix.recent.add(first, events)
	ix.Notify()
}

func (r *recent) add(first uint64, events []ledger.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.ents); n > 0 && (first != r.start+uint64(n) || n+len(events) > maxRecent) {
		// Another writer's events lie between, or the tailer is far
		// behind: hold from these on.
		r.ents = nil
	}
	if len(r.ents) == 0 {
		r.start = first
	}
	for _, ev := range events {
		ev.Bodies = nil // the index never reads them
		r.ents = append(r.ents, ev)
	}
}

// take returns up to n held events from index from on, and forgets those
// before from (indexed already). When from is not held it returns nil and
// the index of the first held event beyond from (or none, ^0): where the
// store need not be read from.
func (r *recent) take(from uint64, n int) ([]ledger.Entry, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.start + uint64(len(r.ents))
	if from < r.start {
		return nil, r.start
	}
	if from >= end {
		r.ents = nil
		return nil, ^uint64(0)
	}
	r.ents, r.start = r.ents[from-r.start:], from
	out := make([]ledger.Entry, min(n, len(r.ents)))
	for i := range out {
		out[i] = ledger.Entry{Index: from + uint64(i), Event: r.ents[i]}
	}
	return out, from
}
