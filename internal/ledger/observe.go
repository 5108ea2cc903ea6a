package ledger

import "time"

// CommitStats describes one batch the sequencer committed, or failed to,
// for Config.Observe: what an operator graphs (commit latency, batch
// sizes, the log's growth) without the ledger knowing how it is shown.
type CommitStats struct {
	// Events is how many events the batch held.
	Events int
	// Duration is how long the commit took, from the batch leaving the
	// queue to the store's transaction being durable (or failing),
	// retries after a conflict with another writer included.
	Duration time.Duration
	// Size is the log's size after the commit, as this ledger knows it:
	// with replicas, other writers' events up to this commit included.
	Size uint64
	// LockWait and LockHeld are, on a shared store (SharedStore), how
	// long the batch waited for the store's write lock and how long it
	// held it, from the lock's grant to the end of the commit (the last
	// attempt's, after a conflict). Every writer's commits are serialized
	// by that lock: LockHeld bounds how many batches per second all
	// replicas together can commit. Both are zero on other stores.
	LockWait, LockHeld time.Duration
	// Err is why the commit failed; nil when the batch is durable.
	Err error
}

// observe tells Config.Observe of a batch. It runs on the sequencer, so
// it reads the tree's size safely.
func (l *Ledger) observe(start time.Time, reqs []*request, lock lockTimes, err error) {
	if l.cfg.Observe == nil {
		return
	}
	l.cfg.Observe(CommitStats{Events: batchEvents(reqs), Duration: time.Since(start), Size: l.tree.size(),
		LockWait: lock.wait, LockHeld: lock.held, Err: err})
}

// lockTimes are the waits for, and the holds of, a shared store's write
// lock, measured around SharedStore.Sequence: from the call to the stamp
// callback (the lock granted), and from there to its return.
type lockTimes struct{ wait, held time.Duration }

// batchEvents counts the events of a batch's requests.
func batchEvents(reqs []*request) int {
	n := 0
	for _, r := range reqs {
		n += len(r.entries)
	}
	return n
}
