package metrics

import "github.com/prometheus/client_golang/prometheus"

// TaskCounts are the task service's gauges, read at scrape time.
type TaskCounts struct {
	ActiveTasks      int
	PendingApprovals int
	// CallsHeld and CallsPastWindow are the calls in flight held in
	// memory and those past the window, found in the store.
	CallsHeld, CallsPastWindow int
}

// RateLimitCounts are the rate limiter's totals since start: requests
// answered 429, by the bucket that was empty.
type RateLimitCounts struct {
	Unauthenticated, Failed, Principal int64
}

// SequenceCounts are how a shared store has sequenced its batches since
// start (the PostgreSQL store's SequenceStats).
type SequenceCounts struct {
	Ahead, Refused, Locked uint64
}

var (
	sequencedDesc = prometheus.NewDesc(Namespace+"_ledger_sequenced_total",
		"Batches a shared store sequenced, by how: ahead (one round trip, stamped before the lock), "+
			"refused (stamped ahead, then again under the lock), locked (under the lock, in two round trips, the refused ones included).",
		[]string{"how"}, nil)
	tasksActiveDesc = prometheus.NewDesc(Namespace+"_tasks_active",
		"Tasks active now (approved, unexpired, not ended).", nil, nil)
	approvalsPendingDesc = prometheus.NewDesc(Namespace+"_approvals_pending",
		"Approval requests (of tasks and of step-ups) an approver can still decide.", nil, nil)
	actionsInFlightDesc = prometheus.NewDesc(Namespace+"_actions_in_flight",
		"Calls authorized whose result is not recorded yet, by where the task state keeps them: memory (within its window), "+
			"store (past it: counted, a late result looked up in the store).",
		[]string{"held"}, nil)
	rateLimitedDesc = prometheus.NewDesc(Namespace+"_rate_limited_total",
		"Requests answered 429, by bucket: unauthenticated (no credential), failed (refused credentials from the address), principal.",
		[]string{"bucket"}, nil)
)

// Tasks registers writ_tasks_active, writ_approvals_pending and
// writ_actions_in_flight, read from f once per scrape.
func (m *Metrics) Tasks(f func() TaskCounts) error {
	descs := []*prometheus.Desc{tasksActiveDesc, approvalsPendingDesc, actionsInFlightDesc}
	return m.Register(collectorFunc{descs: descs, collect: func(ch chan<- prometheus.Metric) {
		c := f()
		ch <- prometheus.MustNewConstMetric(tasksActiveDesc, prometheus.GaugeValue, float64(c.ActiveTasks))
		ch <- prometheus.MustNewConstMetric(approvalsPendingDesc, prometheus.GaugeValue, float64(c.PendingApprovals))
		ch <- prometheus.MustNewConstMetric(actionsInFlightDesc, prometheus.GaugeValue, float64(c.CallsHeld), "memory")
		ch <- prometheus.MustNewConstMetric(actionsInFlightDesc, prometheus.GaugeValue, float64(c.CallsPastWindow), "store")
	}})
}

// RateLimited registers writ_rate_limited_total, read from f once per
// scrape.
func (m *Metrics) RateLimited(f func() RateLimitCounts) error {
	return m.counters(rateLimitedDesc, []string{"unauthenticated", "failed", "principal"}, func() []float64 {
		c := f()
		return []float64{float64(c.Unauthenticated), float64(c.Failed), float64(c.Principal)}
	})
}

// Sequenced registers writ_ledger_sequenced_total, read from f once per
// scrape.
func (m *Metrics) Sequenced(f func() SequenceCounts) error {
	return m.counters(sequencedDesc, []string{"ahead", "refused", "locked"}, func() []float64 {
		c := f()
		return []float64{float64(c.Ahead), float64(c.Refused), float64(c.Locked)}
	})
}

// counters registers desc, a counter of one label, whose value for each
// of labels f returns, in their order, once per scrape.
func (m *Metrics) counters(desc *prometheus.Desc, labels []string, f func() []float64) error {
	return m.Register(collectorFunc{descs: []*prometheus.Desc{desc}, collect: func(ch chan<- prometheus.Metric) {
		for i, v := range f() {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels[i])
		}
	}})
}

// collectorFunc is a collector whose values are read when scraped.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
