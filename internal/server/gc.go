package server

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target (GOGC) writ server runs with
// unless the GOGC environment variable sets one. A decision allocates
// (request, policy evaluation, events), and at Go's default of 100 the
// collector took about a sixth of the server's CPU under load. At 200 the
// heap may grow to three times what is live rather than twice; in exchange
// the decision API serves about 15 % more at 64 clients
// (docs/performance.md). GOMEMLIMIT is honoured as usual.
const GCPercent = 200

// TuneGC sets the collector's target to GCPercent unless GOGC is set, and
// returns a function that restores the previous target.
func TuneGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	prev := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(prev) }
}
