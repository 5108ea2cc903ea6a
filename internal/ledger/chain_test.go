package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
)

// checkChains reads every leaf and requires each task event to name the
// task's previous event, and the first none.
func checkChains(t testing.TB, st ledger.Store) (links int) {
	t.Helper()
	last := map[string]uint64{}
	for i, leaf := range readAllLeaves(t, st) {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatal(err)
		}
		task := ent.Event.TaskID
		if task == "" {
			if ent.Event.Prev != nil {
				t.Errorf("leaf %d of no task has prev %d", i, *ent.Event.Prev)
			}
			continue
		}
		p, seen := last[task]
		switch {
		case !seen && ent.Event.Prev != nil:
			t.Errorf("leaf %d, the first of task %s, names prev %d", i, task, *ent.Event.Prev)
		case seen && (ent.Event.Prev == nil || *ent.Event.Prev != p):
			t.Errorf("leaf %d of task %s: prev %v, want %d", i, task, ent.Event.Prev, p)
		case seen:
			links++
		}
		last[task] = uint64(i)
	}
	return links
}

func taskEvent(n int) ledger.Event {
	e := testEvent(n, n%2 == 0)
	e.TaskID = fmt.Sprintf("tsk_%d", n%7)
	return e
}

// Concurrent appenders of interleaved tasks, batches that fail and roll
// back, and a restart: every task's chain stays whole.
func TestChainsAcrossBatchesFailuresAndRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, _ := openDir(t, dir, nil)
	fs := &flakyStore{Store: d.Store.(*sqlite.Store)}
	l, err := ledger.New(ctx, ledger.Config{Store: fs, Signer: d.Signer, MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	run := func(from, workers int, wantErr bool) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 20 {
					n := from + w*100 + k
					var err error
					if k%5 == 0 {
						_, err = l.AppendAll(ctx, []ledger.Event{taskEvent(n), taskEvent(n + 1), taskEvent(n + 2), testEvent(n, false)})
					} else {
						_, err = l.Append(ctx, taskEvent(n))
					}
					if wantErr != (err != nil) || wantErr && !errors.Is(err, ledger.ErrUnavailable) {
						t.Errorf("append %d: err %v", n, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	run(0, 8, false)
	fs.fail.Store(true)
	run(10000, 4, true)
	fs.fail.Store(false)
	run(20000, 8, false)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = ledger.New(ctx, ledger.Config{Store: d.Store, Signer: d.Signer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, taskEvent(3)); err != nil {
		t.Fatal(err)
	}
	closeAll(t, d, l)
	d = openReadOnly(t, dir)
	links := checkChains(t, d.Store)
	rep := mustVerifyOK(t, d.Store, d.VerifierKey)
	if rep.Links != links || rep.Tasks != 7 || links < 400 {
		t.Errorf("verify checked %d links of %d tasks; the log has %d links of 7 tasks", rep.Links, rep.Tasks, links)
	}
}
