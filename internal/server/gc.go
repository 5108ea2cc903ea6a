package server

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
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
// GOGC=50 would. The room is most of a small server's resident set: with
// a million calls in flight it ended at 205 MB with 64 MiB of it and at
// 190-192 MB with 48, the decision API serving the same within the noise
// (0.98-1.02x at 64 clients; docs/performance.md).
//
// Until the server is ready (GCTuning.Ready) there is no soft limit, and
// the target is StartGCPercent: a start builds the task state once and
// keeps nearly all of it, so a collection meanwhile finds little to free,
// and the limit cost far more than the target it stands for (the runtime
// also returns memory to the system to stay under it). Under such a limit,
// even with all that is live as room, a start from the snapshot of ten
// million events took 23-25 s and 41-43 s of CPU; at GOGC=100 without it,
// 16-22 s and 25-30 s; at GOGC=200, 11-18 s and 15-25 s
// (docs/performance.md, Start-up).
const GCHeadroom = 48 << 20

// StartGCPercent is the collector's target while writ server starts: the
// heap may grow to three times what is live, as the state grows, for a
// start that takes a third of the time it took under the limit.
const StartGCPercent = 200

// GCTuning is the collector's tuning TuneGCForStart set.
type GCTuning struct {
	mu    sync.Mutex
	tuned bool // GOGC was not set
	limit bool // nor GOMEMLIMIT
	prev  int
	// capped: a container's memory limit bounds the start; prevLimit is
	// the soft limit found before.
	capped    bool
	prevLimit int64
	stop      func()
	ready     bool
	restored  bool
}

// TuneGC sets the collector's target to GCPercent, and the soft memory
// limit that bounds it, unless GOGC is set (GOMEMLIMIT alone leaves the
// limit to it), and returns a function that restores both.
func TuneGC() (restore func()) {
	g := TuneGCForStart()
	g.Ready()
	return g.Restore
}

// TuneGCForStart sets the collector's target to StartGCPercent, with no
// soft limit, unless GOGC is set; Ready then tunes it as TuneGC does.
func TuneGCForStart() *GCTuning {
	g := &GCTuning{stop: func() {}}
	if _, set := os.LookupEnv("GOGC"); set {
		return g
	}
	_, limit := os.LookupEnv("GOMEMLIMIT")
	g.tuned, g.limit = true, !limit
	g.prev = debug.SetGCPercent(StartGCPercent)
	if g.limit {
		// In a container with a memory limit, a start's room stops short
		// of it rather than at three times what is live.
		if limit, ok := cgroupMemoryMax(); ok {
			g.prevLimit, g.capped = debug.SetMemoryLimit(limit/10*9), true
		}
	}
	return g
}

// cgroupLimits are the files that hold the memory limit of the process's
// cgroup: version 2's, then version 1's.
var cgroupLimits = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupMemoryMax reads the memory limit of the process's cgroup, false
// when there is none or it cannot be read.
func cgroupMemoryMax() (int64, bool) {
	for _, f := range cgroupLimits {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max" (version 2) or a page-rounded 2^63 (version 1): no limit.
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Ready sets the target to GCPercent and starts keeping the soft limit.
func (g *GCTuning) Ready() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.tuned || g.ready || g.restored {
		return
	}
	g.ready = true
	debug.SetGCPercent(GCPercent)
	if g.capped {
		debug.SetMemoryLimit(g.prevLimit) // keepHeadroom finds it and puts it back
	}
	if g.limit {
		g.stop = keepHeadroom(GCHeadroom)
	}
}

// Restore puts back the target and limit it found.
func (g *GCTuning) Restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.tuned || g.restored {
		return
	}
	g.restored = true
	g.stop()
	if g.capped && !g.ready {
		debug.SetMemoryLimit(g.prevLimit)
	}
	debug.SetGCPercent(g.prev)
}

// keepHeadroom sets the soft memory limit now and after every collection
// (memSamples.limit), and returns a function that stops that and restores
// the limit it found.
func keepHeadroom(least uint64) (stop func()) {
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
		debug.SetMemoryLimit(samples.limit(least))
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
// and the larger of least and half what is live.
func (m *memSamples) limit(least uint64) int64 {
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
	l := live + other + max(least, live/2)
	if l > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l)
}
