package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/writhq/writ/internal/ledger"
)

// testTaskChains: writers append the events of the same tasks at once,
// one of them opening late, on a store the others have written; every
// task event names its task's previous event, whoever appended either,
// and a child task's request names its parent's delegation.
func testTaskChains(t *testing.T, open func(*testing.T) ledger.Store, writers int) {
	ctx := context.Background()
	kp := NewKey(t, "storetest.example/chains")
	const tasks, goroutines, perGoroutine = 5, 4, 12
	newLedger := func() (*ledger.Ledger, ledger.Store) {
		s := open(t)
		l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
		if err != nil {
			t.Fatal(err)
		}
		return l, s
	}
	var ledgers []*ledger.Ledger
	var first ledger.Store
	for range writers {
		l, s := newLedger()
		ledgers, first = append(ledgers, l), s
	}
	run := func(round int) {
		var wg sync.WaitGroup
		for i, l := range ledgers {
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range perGoroutine {
						n := round*1000000 + i*10000 + g*100 + k
						e := testEvent(n)
						e.TaskID = fmt.Sprintf("tsk_%d", n%tasks)
						if _, err := l.Append(ctx, e); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
	}
	run(0)
	// A writer that opens now learns the chains from the store.
	if writers > 1 {
		l, _ := newLedger()
		ledgers = append(ledgers, l)
	}
	run(1)
	child := ledger.Event{Type: ledger.TypeTaskRequested, TaskID: "tsk_child", Parent: "tsk_0"}
	delegated := ledger.Event{Type: ledger.TypeTaskDelegated, TaskID: "tsk_0", Data: json.RawMessage(`{"child_task_id":"tsk_child"}`)}
	firstIdx, err := ledgers[len(ledgers)-1].AppendAll(ctx, []ledger.Event{child, delegated})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgers[0].Append(ctx, ledger.Event{Type: ledger.TypeTaskActivated, TaskID: "tsk_child"}); err != nil {
		t.Fatal(err)
	}
	for _, l := range ledgers {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]uint64{}
	links := 0
	err = first.ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		task := e.Event.TaskID
		p, seen := last[task]
		switch {
		case task == "":
		case !seen && e.Event.Prev != nil:
			return fmt.Errorf("leaf %d, the first of task %s, names prev %d", i, task, *e.Event.Prev)
		case seen && (e.Event.Prev == nil || *e.Event.Prev != p):
			return fmt.Errorf("leaf %d of task %s names prev %v; the task's previous event is %d", i, task, e.Event.Prev, p)
		case seen:
			links++
		}
		if i == firstIdx && (e.Event.Delegation == nil || *e.Event.Delegation != firstIdx+1) {
			return fmt.Errorf("the child's task.requested (leaf %d) names delegation %v, want %d", i, e.Event.Delegation, firstIdx+1)
		}
		if task != "" {
			last[task] = i
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := Verify(t, first, kp)
	// Every task event but each task's first names a prev.
	want := (2*writers+min(writers-1, 1))*goroutines*perGoroutine + 3 - (tasks + 1)
	if links != want || rep.Links != links+1 || rep.Tasks != tasks+1 {
		t.Errorf("%d links (verify checked %d of %d tasks), want %d prev links, one delegation, %d tasks", links, rep.Links, rep.Tasks, want, tasks+1)
	}
}
