package server

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
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

// GCHeadroom is the least room past what is live the heap is given. With
// GCPercent alone the heap may grow to five times what is live: the room a
// small heap needs to collect seldom, and far more than a large one should
// take (a state of a million calls in flight, or of ten million events,
// would grow by hundreds of megabytes or by gigabytes). So writ server
// also keeps a soft memory limit (GOMEMLIMIT): what is live, what the
// runtime holds besides the heap, and the larger of GCHeadroom and half
// what is live, renewed after every collection, unless GOGC or GOMEMLIMIT
// is set. A small heap collects as GCPercent says; a large one as
// GOGC=50 would.
//
// Until the server is ready (GCTuning.Ready) the room is as much as is
// live, as GOGC=100 would give: a start builds the task state once and
// keeps nearly all of it, so each collection meanwhile finds little to
// free, and at half the room a start from the snapshot of a million events
// took 1.9-2.0 s of CPU against 1.4-1.7 s (docs/performance.md, Start-up).
const GCHeadroom = 64 << 20

// GCTuning is the collector's tuning TuneGC set.
type GCTuning struct {
	restore func()
	running atomic.Bool
}

// TuneGC sets the collector's target to GCPercent, and the soft memory
// limit that bounds it with a running server's room, unless GOGC is set
// (GOMEMLIMIT alone leaves the limit to it), and returns a function that
// restores both.
func TuneGC() (restore func()) {
	g := TuneGCForStart()
	g.Ready()
	return g.Restore
}

// TuneGCForStart is TuneGC with a start's room for the heap until Ready.
func TuneGCForStart() *GCTuning {
	g := &GCTuning{restore: func() {}}
	if _, set := os.LookupEnv("GOGC"); set {
		return g
	}
	prev := debug.SetGCPercent(GCPercent)
	stop := func() {}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		stop = keepHeadroom(GCHeadroom, &g.running)
	}
	g.restore = func() {
		stop()
		debug.SetGCPercent(prev)
	}
	return g
}

// Ready gives the heap a running server's room from the next collection
// on.
func (g *GCTuning) Ready() { g.running.Store(true) }

// Restore puts back the target and limit TuneGC found.
func (g *GCTuning) Restore() { g.restore() }

// keepHeadroom sets the soft memory limit now and after every collection
// (memSamples.limit), and returns a function that stops that and restores
// the limit it found.
func keepHeadroom(least uint64, running *atomic.Bool) (stop func()) {
	prev := debug.SetMemoryLimit(-1)
	var mu sync.Mutex
	stopped := false
	samples := newMemSamples()
	var renew func()
	renew = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		debug.SetMemoryLimit(samples.limit(least, running.Load()))
		// A cleanup runs after the collection that finds its object
		// unreachable: this one, the next time.
		runtime.AddCleanup(&sentinel{}, func(struct{}) { renew() }, struct{}{})
	}
	renew()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		debug.SetMemoryLimit(prev)
	}
}

// sentinel is an object for a cleanup to watch: large enough, and with a
// pointer, not to share a block of the tiny allocator with others, which
// would keep it reachable with them.
type sentinel struct {
	_ *int
	_ [24]byte
}

// memSamples reads what a limit is made of from runtime/metrics.
type memSamples struct{ s []metrics.Sample }

const (
	liveHeap     = "/gc/heap/live:bytes"
	totalMapped  = "/memory/classes/total:bytes"
	heapObjects  = "/memory/classes/heap/objects:bytes"
	heapUnused   = "/memory/classes/heap/unused:bytes"
	heapFree     = "/memory/classes/heap/free:bytes"
	heapReleased = "/memory/classes/heap/released:bytes"
)

func newMemSamples() *memSamples {
	m := &memSamples{}
	for _, n := range []string{liveHeap, totalMapped, heapObjects, heapUnused, heapFree, heapReleased} {
		m.s = append(m.s, metrics.Sample{Name: n})
	}
	return m
}

// limit returns the soft limit: the heap live at the last collection,
// what the runtime holds outside the heap (stacks, its own structures),
// and the larger of least and half what is live when running, or all of
// it while starting.
func (m *memSamples) limit(least uint64, running bool) int64 {
	metrics.Read(m.s)
	v := make([]uint64, len(m.s))
	for i, s := range m.s {
		if s.Value.Kind() != metrics.KindUint64 {
			return math.MaxInt64 // a runtime without the metric: no limit
		}
		v[i] = s.Value.Uint64()
	}
	live, total := v[0], v[1]
	heap := v[2] + v[3] + v[4] + v[5]
	other := uint64(0)
	if total > heap {
		other = total - heap
	}
	room := live
	if running {
		room = live / 2
	}
	l := live + other + max(least, room)
	if l > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l)
}
