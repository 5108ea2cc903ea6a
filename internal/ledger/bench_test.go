package ledger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/storetest"
)

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
			storetest.ReportAppends(b, storetest.RunAppenders(b, []*ledger.Ledger{l}, n, b.N))
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
			storetest.ReportPercentiles(b, storetest.RunAppenders(b, []*ledger.Ledger{l}, n, b.N))
		})
	}
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
	storetest.RunAppenders(b, []*ledger.Ledger{l}, 256, n)
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	v, err := ledger.NewVerifier(d.VerifierKey)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.StartTimer() // RunAppenders stopped it
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
