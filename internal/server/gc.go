package server

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target (GOGC) writ server runs with
// unless the GOGC environment variable sets one. A decision allocates
// (request, policy evaluation, events), and at Go's default of 100 the
// collector took about a sixth of the server's CPU under load. At 400 the
// heap may grow to five times what is live rather than twice (peak RSS
// under the 64-client benchmark: 220 MB at 100, 310 MB at 200, 510 MB at
// 400); in exchange the decision API serves 15-25 % more with a shorter
// tail (docs/performance.md). GOGC=100 or a GOMEMLIMIT trades that back.
const GCPercent = 400

// TuneGC sets the collector's target to GCPercent unless GOGC is set, and
// returns a function that restores the previous target.
func TuneGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	prev := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(prev) }
}
