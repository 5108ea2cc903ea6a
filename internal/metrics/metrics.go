// Package metrics is writ's Prometheus instrumentation: one private
// registry per server (tests run several servers in one process), the
// series docs/observability.md lists, and the small hooks the rest of
// writ reports through: an HTTP middleware, a decision counter, the
// ledger's commit observer, gauges read at scrape time, and the lag gauges
// of event sinks and witnesses.
//
// Series are resolved to their label children once (at start, or the first
// time a route and status code meet), so that a request costs a map lookup
// and two atomic adds, never an allocation.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series writ defines.
const Namespace = "writ"

// Config configures a Metrics.
type Config struct {
	// Points are the enforcement points writ_decisions_total counts, as
	// the callers of Decision name them; their series exist, at zero,
	// from the start. Other names are counted too, resolved per call.
	Points []string
}

// Metrics is one server's metrics. A nil *Metrics records nothing, so that
// parts built without one (in tests) need no checks.
type Metrics struct {
	reg *prometheus.Registry

	decisions *prometheus.CounterVec
	points    []string
	decided   [][numOutcomes]prometheus.Counter

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpMu       sync.RWMutex
	httpSeries   map[routeCode]httpSeries

	commitDuration prometheus.Histogram
	commitBatch    prometheus.Histogram
	commitFailures prometheus.Counter
	ledgerSize     prometheus.Gauge
	lockWait       prometheus.Histogram
	lockHeld       prometheus.Histogram

	sinkLag    *prometheus.GaugeVec
	witnessLag *prometheus.GaugeVec
}

// commitHistogram is a histogram of the seconds one part of a ledger
// commit takes, in buckets from 100µs to 2.5s: the commit itself and, on
// PostgreSQL, its wait for the head lock and its hold of it.
func commitHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: name, Help: help,
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
}

// New builds the metrics and registers them, with the Go runtime's and the
// process's collectors, on a registry of their own.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		httpSeries: map[routeCode]httpSeries{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "decisions_total",
			Help: "Answers to tool calls and token requests, by enforcement point and outcome (allow, deny, require_approval, error).",
		}, []string{"point", "outcome"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		commitDuration: commitHistogram("ledger_commit_duration_seconds",
			"Time to make one batch of events durable in the store, failed commits included."),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "ledger_commit_batch_events",
			Help:    "Events per committed batch (group commit grows batches under load).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 17),
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "ledger_commit_failures_total",
			Help: "Batches the store could not make durable; every caller in them was refused.",
		}),
		ledgerSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "ledger_size",
			Help: "Events in the ledger, as of this server's latest commit.",
		}),
		lockWait: commitHistogram("ledger_lock_wait_seconds",
			"PostgreSQL: time a batch waited for the shared log's head lock, which serializes every replica's commits."),
		lockHeld: commitHistogram("ledger_lock_held_seconds",
			"PostgreSQL: time a batch held the shared log's head lock, from its grant to the end of the commit."),
		sinkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "sink_lag_events",
			Help: "Ledger events not yet delivered to an event sink.",
		}, []string{"sink"}),
		witnessLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "witness_lag_events",
			Help: "Ledger events past the newest checkpoint a witness has cosigned.",
		}, []string{"witness"}),
	}
	m.points = append([]string(nil), cfg.Points...)
	m.decided = make([][numOutcomes]prometheus.Counter, len(m.points))
	for i, p := range m.points {
		for o := range Outcome(numOutcomes) {
			m.decided[i][o] = m.decisions.WithLabelValues(p, o.String())
		}
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.decisions, m.httpRequests, m.httpDuration,
		m.commitDuration, m.commitBatch, m.commitFailures, m.ledgerSize, m.lockWait, m.lockHeld,
		m.sinkLag, m.witnessLag,
	)
	return m
}

// Handler serves the registry in Prometheus's text format (or
// OpenMetrics, when the scraper asks for it). A collector that fails is
// left out of the answer rather than failing the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		Registry:          m.reg,
	})
}

// Register adds collectors of the caller's own, such as gauges read at
// scrape time.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	if m == nil {
		return nil
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
