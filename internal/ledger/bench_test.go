package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
)

// benchEvent is a typical action.authorized event: envelope fields, a small
// data object and one committed body.
func benchEvent(i int) ledger.Event {
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

func openBenchLedger(b *testing.B, dir string) (*ledger.Ledger, *datadir.Dir) {
	b.Helper()
	ctx := context.Background()
	d, err := datadir.Open(ctx, dir, datadir.Options{Write: true})
	if err != nil {
		b.Fatal(err)
	}
	// The server's defaults: checkpoints at most every 5ms, commits that wait
	// up to 1ms for company under concurrent load.
	cfg := ledger.DefaultConfig()
	cfg.Store, cfg.Signer = d.Store, d.Signer
	l, err := ledger.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l, d
}

// BenchmarkAppend measures durable appends per second with several
// concurrent appenders: every append is acknowledged only after fsync.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			l, d := openBenchLedger(b, b.TempDir())
			defer d.Close()
			defer l.Close(context.Background())
			lat := runAppenders(b, l, n, b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkAppendLatency reports the latency of one append at 1 and 64
// concurrent appenders.
func BenchmarkAppendLatency(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			l, d := openBenchLedger(b, b.TempDir())
			defer d.Close()
			defer l.Close(context.Background())
			lat := runAppenders(b, l, n, b.N)
			reportPercentiles(b, lat)
		})
	}
}

// runAppenders appends total events from n goroutines and returns each
// append's latency.
func runAppenders(b *testing.B, l *ledger.Ledger, n, total int) []time.Duration {
	ctx := context.Background()
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				ev := benchEvent(i)
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

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkVerify measures a full verification of a ledger of
// WRIT_BENCH_VERIFY_EVENTS events (default 100,000; the published figure
// uses 1,000,000). The ledger is built once, outside the timer.
func BenchmarkVerify(b *testing.B) {
	n := 100_000
	if s := os.Getenv("WRIT_BENCH_VERIFY_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	dir := filepath.Join(b.TempDir(), "d")
	l, d := openBenchLedger(b, dir)
	runAppenders(b, l, 256, n)
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	v, err := ledger.NewVerifier(d.VerifierKey)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.StartTimer() // runAppenders stopped it
	for range b.N {
		rep, err := ledger.Verify(context.Background(), d.Store, v, d.VerifierKey)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Size != uint64(n) {
			b.Fatalf("verify: ok=%v size=%d failures=%v", rep.OK(), rep.Size, rep.Failures)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "events")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	d.Close()
}
