package task_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/task"
)

// BenchmarkDecodeSnapshot decodes the task state snapshot in the file
// WRIT_BENCH_SNAPSHOT (the parts of task_snapshot_part joined in order,
// as BenchmarkStart leaves them; docs/performance.md), under the
// collector's tuning of a start, and reports the heap after: the decoding alone, for its CPU and memory
// profiles. Without the variable it is skipped.
func BenchmarkDecodeSnapshot(b *testing.B) {
	f := os.Getenv("WRIT_BENCH_SNAPSHOT")
	if f == "" {
		b.Skip("WRIT_BENCH_SNAPSHOT names no snapshot")
	}
	buf, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	gc := server.TuneGCForStart()
	defer gc.Restore()
	for b.Loop() {
		st, err := task.DecodeSnapshot(buf)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "MiB-heap")
		runtime.KeepAlive(st)
	}
}
