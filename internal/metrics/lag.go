package metrics

// Gauge is a value its owner sets as it changes: what an event sink or the
// witness loop reports its lag through, without depending on Prometheus.
type Gauge interface {
	Set(float64)
}

type noGauge struct{}

func (noGauge) Set(float64) {}

// SinkLag returns the gauge writ_sink_lag_events{sink=name}: how many
// ledger events the sink has yet to deliver. The sink sets it as its
// cursor moves; a nil *Metrics gives a gauge that ignores it.
func (m *Metrics) SinkLag(name string) Gauge {
	if m == nil {
		return noGauge{}
	}
	return m.sinkLag.WithLabelValues(name)
}

// WitnessLag returns the gauge writ_witness_lag_events{witness=name}: how
// many events the ledger holds past the newest checkpoint the witness has
// cosigned. The witness loop sets it after each submission.
func (m *Metrics) WitnessLag(name string) Gauge {
	if m == nil {
		return noGauge{}
	}
	return m.witnessLag.WithLabelValues(name)
}
