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
	// Err is why the commit failed; nil when the batch is durable.
	Err error
}

// observe tells Config.Observe of a batch. It runs on the sequencer, so
// it reads the tree's size safely.
func (l *Ledger) observe(start time.Time, reqs []*request, err error) {
	if l.cfg.Observe == nil {
		return
	}
	l.cfg.Observe(CommitStats{Events: batchEvents(reqs), Duration: time.Since(start), Size: l.tree.size(), Err: err})
}

// batchEvents counts the events of a batch's requests.
func batchEvents(reqs []*request) int {
	n := 0
	for _, r := range reqs {
		n += len(r.entries)
	}
	return n
}
