package task_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/task"
)

// TestAwaitApproval: a wait on a step-up ends with its decision or its
// expiry (by the service's clock), only for the step-ups of the
// credential's own task, and with the caller's context.
func TestAwaitApproval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	if err := e.reopen(task.Config{ApprovalTTL: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	ask := func(res string) string {
		t.Helper()
		a, err := e.svc.Authorize(ctx, cred, call("invoices.read", res, `{}`), task.Request{})
		if err != nil || !a.ApprovalRequired {
			t.Fatalf("step-up for %s: %+v %v", res, a, err)
		}
		return a.ApprovalID
	}
	granted, denied, lapsed, pending := ask("erp://x/1"), ask("erp://x/2"), ask("erp://x/3"), ask("erp://x/4")
	for id, d := range map[string]string{granted: "approve", denied: "deny"} {
		if _, err := e.svc.DecideApproval(ctx, bob, id, api.Decide{Decision: d}); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{granted: task.AwaitGranted, denied: task.AwaitDenied} {
		if got, err := e.svc.AwaitApproval(ctx, cred, id); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", id, got, err, want)
		}
	}
	// Another task's credential learns nothing of it.
	other := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	if _, err := e.svc.AwaitApproval(ctx, other, granted); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("another task's credential: %v, want ErrNotFound", err)
	}
	// The caller's context bounds the wait.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.svc.AwaitApproval(short, cred, pending); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an undecided approval: %v, want the context's deadline", err)
	}
	// Its expiry ends it, as the clock says.
	e.clk.Add(31 * time.Second)
	if got, err := e.svc.AwaitApproval(ctx, cred, lapsed); err != nil || got != task.AwaitExpired {
		t.Errorf("past its expiry: %q %v, want %q", got, err, task.AwaitExpired)
	}
}
