package ledger_test

import (
	"sync"
	"testing"

	"github.com/writhq/writ/internal/ledger"
)

// TestObserve: every committed event is in exactly one observed batch,
// each batch is timed, and the size after the last is the log's.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var stats []ledger.CommitStats
	_, l := openDir(t, t.TempDir(), func(c *ledger.Config) {
		c.Observe = func(s ledger.CommitStats) {
			mu.Lock()
			stats = append(stats, s)
			mu.Unlock()
		}
	})
	const n = 200
	idx := appendMany(t, l, 0, n, 16, false)
	var last uint64
	for _, i := range idx {
		last = max(last, i)
	}
	mu.Lock()
	defer mu.Unlock()
	events := 0
	var size uint64
	for _, s := range stats {
		if s.Err != nil || s.Events < 1 || s.Duration <= 0 || s.Size < size {
			t.Errorf("batch %+v after size %d", s, size)
		}
		events += s.Events
		size = s.Size
	}
	if events != n || size != last+1 {
		t.Errorf("observed %d events in %d batches, size %d; want %d events, size %d", events, len(stats), size, n, last+1)
	}
}
