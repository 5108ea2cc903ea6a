package server_test

import (
	"os"
	"runtime/debug"
	"testing"

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

	t.Setenv("GOGC", "50")
	restore = server.TuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: target %d, want the runtime's own 100 left alone", got)
	}
	restore()
}
