// Package latency summarises the latencies of a load run as nearest-rank
// percentiles, so that 'writ bench' and the load tool behind
// scripts/compare-authorize measure a run the same way.
package latency

import (
	"slices"
	"time"
)

// Summary is the latency distribution of a run, in milliseconds.
type Summary struct {
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Summarize sorts lat in place and returns its percentiles and maximum:
// all zero when lat is empty.
func Summarize(lat []time.Duration) Summary {
	slices.Sort(lat)
	s := Summary{P50ms: ms(Quantile(lat, 0.50)), P90ms: ms(Quantile(lat, 0.90)), P99ms: ms(Quantile(lat, 0.99))}
	if len(lat) > 0 {
		s.MaxMs = ms(lat[len(lat)-1])
	}
	return s
}

// Quantile returns the q-quantile of sorted latencies (nearest rank), or 0
// when there are none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
