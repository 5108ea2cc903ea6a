package task_test

import (
	"context"
	"errors"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/task"
)

// TestCompletedActionsLeaveState: an action whose result is recorded
// leaves the state, so a live task's memory does not grow with the actions
// it has made; a result reported again, once the action is out of the ring
// of recent ones, is still refused as already recorded (or as another
// task's), the ledger found through the query index; and a restart
// replays to the same.
func TestCompletedActionsLeaveState(t *testing.T) {
	defer task.SetRecentKept(2)()
	ctx := context.Background()
	e := newEnv(t, "dev")
	finder := indexFinder(e)
	const n = 6
	out, cred, otherCred, ids := e.indexedCalls(n)
	if got := task.ActionsHeld(e.svc); got != n {
		t.Fatalf("the state holds %d actions in flight, want %d", got, n)
	}
	for _, id := range ids {
		if _, err := e.svc.RecordResult(ctx, cred, id, api.ActionResult{Status: "ok"}); err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
	}
	if got := task.ActionsHeld(e.svc); got != 0 {
		t.Fatalf("after every result the state holds %d actions, want 0", got)
	}
	check := func(when string) {
		t.Helper()
		for _, id := range []string{ids[0], ids[n-1]} { // out of the ring, and in it
			if _, err := e.svc.RecordResult(ctx, cred, id, api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrConflict) || code(err) != "already_recorded" {
				t.Errorf("%s: a second result of %s: %v, want already_recorded", when, id, err)
			}
			if _, err := e.svc.RecordResult(ctx, otherCred, id, api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrForbidden) || code(err) != "other_task" {
				t.Errorf("%s: a result of %s from another task: %v, want other_task", when, id, err)
			}
		}
		if _, err := e.svc.RecordResult(ctx, cred, "act_neverauthorized", api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("%s: a result of an unknown action: %v, want not found", when, err)
		}
		h, ok := e.svc.History(out.TaskID, "invoices.read", "read", "erp://invoices/2026-Q3/17")
		if !ok || h.Task.Calls.Allowed != n || h.Task.Calls.InFlight != 0 {
			t.Errorf("%s: history %+v, want %d allowed and none in flight", when, h.Task.Calls, n)
		}
	}
	check("live")
	if err := e.reopen(task.Config{FindAction: finder}); err != nil {
		t.Fatal(err)
	}
	if got := task.ActionsHeld(e.svc); got != 0 {
		t.Fatalf("after a restart the state holds %d actions, want 0", got)
	}
	check("after a restart")
	// Without a finder, a result for an action out of the ring is refused
	// all the same, as unknown.
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, ids[0], api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("without a finder: %v, want not found", err)
	}
}
