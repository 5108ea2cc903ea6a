package metrics

import "github.com/writhq/writ/internal/ledger"

// ObserveCommit is the ledger's Config.Observe: commit latency, batch size,
// failures and the log's size.
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
}

// SetLedgerSize sets writ_ledger_size before the first commit, from the
// store's size at start.
func (m *Metrics) SetLedgerSize(n uint64) {
	if m == nil {
		return
	}
	m.ledgerSize.Set(float64(n))
}
