package task_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// TestEndedTasksActionsForgotten: once a task has ended and its last
// credential has expired (plus ForgetGrace), its actions leave the state, so
// it does not grow with every action ever authorized. Until then a late
// result is still recorded; afterwards it is refused, and a restart, which
// replays the ledger, forgets them as well.
func TestEndedTasksActionsForgotten(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)
	var ids []string
	for range 3 {
		a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{Gateway: policy.GatewayAPI})
		if err != nil || !a.Allow {
			t.Fatalf("authorize: %+v %v", a, err)
		}
		ids = append(ids, a.ActionID)
	}
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		t.Fatal(err)
	}
	// Ended, the credential not yet expired: a late result still counts.
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, ids[0], api.ActionResult{Status: "ok"}); err != nil {
		t.Fatalf("a result after completion, before expiry: %v", err)
	}
	e.clk.Add(5*time.Minute + task.ForgetGrace + time.Second)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.RecordResult(ctx, cred, ids[1], api.ActionResult{Status: "ok"})
	if !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("a result after the credential expired: %v, want not found", err)
	}
	// The trace still has every event: it reads the ledger.
	tr, err := e.svc.Trace(ctx, out.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	authorized := 0
	for _, ev := range tr.Events {
		if strings.Contains(string(ev.Event), `"type":"action.authorized"`) {
			authorized++
		}
	}
	if authorized != 3 {
		t.Errorf("the trace holds %d action.authorized events, want 3", authorized)
	}
	// A restart replays the ledger, result included, coherently.
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, ids[2], api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("after a restart: %v, want not found", err)
	}
}
