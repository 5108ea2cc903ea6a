package ledger

import "sync"

// handoff holds the entries this process has just committed, handed over
// by the ledger's commit hook (Follower.Committed), so that a follower
// applies them without reading their leaves back from the store and
// parsing them. It is a shortcut only: what it does not hold (other
// writers' entries, entries from before this process, or the oldest ones
// once more than max wait) the follower reads from the store.
type handoff struct {
	mu  sync.Mutex
	max int
	// ents are held entries in increasing index order, with gaps where
	// other writers' entries lie between.
	ents []Entry
	// floor is where the follower stands: entries before it are applied
	// and not held again.
	floor uint64
	// dropped counts entries let go unapplied because max were held.
	dropped uint64
}

// add holds events committed at consecutive indexes from first, as keep
// trims them, with their leaves when leaves is not nil, and their leaves'
// hashes when hashes is not nil. It never waits for the follower: past
// max it lets the oldest entries go.
func (h *handoff) add(first uint64, events []Event, leaves, hashes [][]byte, keep func(Event) Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.ents); n > 0 && first <= h.ents[n-1].Index {
		// Out of order (never from one ledger): start over, the store
		// has them all.
		h.dropped += uint64(n)
		h.ents = nil
	}
	if end := first + uint64(len(events)); end <= h.floor {
		return
	} else if first < h.floor {
		skip := h.floor - first
		events, first = events[skip:], h.floor
		leaves, hashes = skipped(leaves, int(skip)), skipped(hashes, int(skip))
	}
	if len(events) > h.max {
		skip := len(events) - h.max
		h.dropped += uint64(skip)
		events, first = events[skip:], first+uint64(skip)
		leaves, hashes = skipped(leaves, skip), skipped(hashes, skip)
	}
	if over := len(h.ents) + len(events) - h.max; over > 0 {
		h.dropped += uint64(over)
		h.ents = h.ents[over:]
	}
	for i, ev := range events {
		e := Entry{Index: first + uint64(i), Event: keep(ev)}
		if leaves != nil {
			e.Leaf = leaves[i]
		}
		if hashes != nil {
			e.Hash = hashes[i]
		}
		h.ents = append(h.ents, e)
	}
}

// skipped returns s without its first n, or nil when s is nil.
func skipped(s [][]byte, n int) [][]byte {
	if s == nil {
		return nil
	}
	return s[n:]
}

// take forgets the entries before from (applied) and returns up to n held
// entries from from on, in index order; they may have gaps between them.
func (h *handoff) take(from uint64, n int) []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.floor = max(h.floor, from)
	i := 0
	for i < len(h.ents) && h.ents[i].Index < from {
		i++
	}
	if i == len(h.ents) {
		h.ents = nil
		return nil
	}
	h.ents = h.ents[i:]
	return append([]Entry(nil), h.ents[:min(n, len(h.ents))]...)
}

// held returns how many entries are held and how many were let go.
func (h *handoff) held() (held int, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ents), h.dropped
}
