package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// BenchEvent is a typical action.authorized event for the append
// benchmarks: envelope fields, a small data object and one committed body.
func BenchEvent(i int) ledger.Event {
	data, _ := json.Marshal(map[string]any{
		"action_id": "act_" + strconv.Itoa(i), "tool": "invoices.read", "operation": "read",
		"resource": "erp://invoices/2026-Q3/" + strconv.Itoa(i), "data_class": "confidential",
		"decision": "allow", "reasons": []string{"task scope covers tool and resource"},
	})
	return ledger.Event{
		Type: ledger.TypeActionAuthorized, TaskID: "tsk_01JD8X6Q5Z3V4M2N8P7R", Principal: "oidc:https://id.example.com#alice",
		Agent: "spiffe://example.org/agent/summarizer", DecisionID: "dec_" + strconv.Itoa(i),
		PolicyVersion: "sha256:9f2c4a1b7e3d5f60c8a9b2d1e4f70a3c5b6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f", JTI: "jti_" + strconv.Itoa(i),
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Data: data,
		Bodies: map[string][]byte{"arguments": []byte(`{"invoice":"` + strconv.Itoa(i) + `","fields":["total","vendor"]}`)},
	}
}

// RunAppenders appends total events of BenchEvent from n goroutines,
// spread round-robin over ledgers (as replicas sharing one store would take
// them), with the benchmark's timer running, and returns each append's
// latency. It leaves the timer stopped.
func RunAppenders(b *testing.B, ledgers []*ledger.Ledger, n, total int) []time.Duration {
	ctx := context.Background()
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for a := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ledgers[a%len(ledgers)]
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				ev := BenchEvent(i)
				start := time.Now()
				if _, err := l.Append(ctx, ev); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	return lat
}

// ReportAppends reports appends per second and the p50 and p99 latency of
// lat, in microseconds.
func ReportAppends(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	ReportPercentiles(b, lat)
}

// ReportPercentiles reports the p50 and p99 of lat, in microseconds.
func ReportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
