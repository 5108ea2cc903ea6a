package server_test

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/writhq/writ/internal/server"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	restore := server.TuneGC()
	if got := debug.SetGCPercent(100); got != server.GCPercent {
		t.Errorf("GOGC unset: target %d, want %d", got, server.GCPercent)
	}
	debug.SetGCPercent(server.GCPercent)
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after restore: target %d, want 100", got)
	}

	// The soft limit follows what is live: a heap that keeps 256 MiB more
	// is allowed that much more after the next collection.
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	runtime.GC() // what is live now, not what an earlier test kept
	restore = server.TuneGC()
	runtime.GC()
	before := waitLimit(t, func(int64) bool { return true })
	if before == math.MaxInt64 || before < server.GCHeadroom {
		t.Errorf("soft limit %d, want what is live plus at least %d", before, server.GCHeadroom)
	}
	kept := make([]byte, 256<<20)
	for i := range kept {
		kept[i] = byte(i)
	}
	runtime.GC()
	after := waitLimit(t, func(l int64) bool { return l >= before+256<<20 })
	if after < before+256<<20 {
		t.Errorf("soft limit %d after keeping 256 MiB, was %d", after, before)
	}
	runtime.KeepAlive(kept)
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after restore: soft limit %d, want none", got)
	}

	// In a container with a memory limit, the start's soft limit is nine
	// tenths of it until Ready.
	dir := t.TempDir()
	limitFile := filepath.Join(dir, "memory.max")
	if err := os.WriteFile(limitFile, []byte("4294967296\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer server.SetCgroupLimits([]string{filepath.Join(dir, "absent"), limitFile})()
	g := server.TuneGCForStart()
	if got := debug.SetMemoryLimit(-1); got != 4294967296/10*9 {
		t.Errorf("starting in a container: soft limit %d, want %d", got, int64(4294967296/10*9))
	}
	g.Ready()
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 || got >= 4294967296/10*9 {
		t.Errorf("ready in a container: soft limit %d, want the running server's", got)
	}
	g.Restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after Restore: soft limit %d, want none", got)
	}
	if err := os.WriteFile(limitFile, []byte("max\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// While starting: StartGCPercent and no soft limit; Ready tunes as
	// TuneGC does, Restore puts back what it found.
	g = server.TuneGCForStart()
	if got := debug.SetGCPercent(server.StartGCPercent); got != server.StartGCPercent {
		t.Errorf("starting: target %d, want %d", got, server.StartGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("starting: soft limit %d, want none", got)
	}
	g.Ready()
	if got := debug.SetGCPercent(server.GCPercent); got != server.GCPercent {
		t.Errorf("ready: target %d, want %d", got, server.GCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 {
		t.Error("ready: no soft limit")
	}
	g.Ready() // again: nothing changes
	g.Restore()
	g.Ready() // after Restore: nothing changes
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after Restore: target %d, want 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after Restore: soft limit %d, want none", got)
	}

	t.Setenv("GOGC", "50")
	restore = server.TuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: target %d, want the runtime's own 100 left alone", got)
	}
	restore()
}

// waitLimit returns the soft memory limit once ok accepts it, or after 10
// seconds: the limit is renewed by a cleanup, which runs on its own after
// a collection.
func waitLimit(t *testing.T, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := debug.SetMemoryLimit(-1)
		if ok(l) || time.Now().After(deadline) {
			return l
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
