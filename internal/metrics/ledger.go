package metrics

import "github.com/writhq/writ/internal/ledger"

// ObserveCommit is the ledger's Config.Observe: commit latency, batch size,
// failures, the log's size and, on a shared store, the head lock's waits
// and holds.
func (m *Metrics) ObserveCommit(s ledger.CommitStats) {
	if m == nil {
		return
	}
	m.commitDuration.Observe(s.Duration.Seconds())
	if s.Err != nil {
		m.commitFailures.Inc()
	} else {
		m.commitBatch.Observe(float64(s.Events))
	}
	m.ledgerSize.Set(float64(s.Size))
	if s.LockHeld > 0 {
		m.lockWait.Observe(s.LockWait.Seconds())
		m.lockHeld.Observe(s.LockHeld.Seconds())
	}
}

// SetLedgerSize sets writ_ledger_size before the first commit, from the
// store's size at start.
func (m *Metrics) SetLedgerSize(n uint64) {
	if m == nil {
		return
	}
	m.ledgerSize.Set(float64(n))
}
