package task_test

import (
	"errors"
	"testing"
	"time"

	"github.com/writhq/writ/internal/task"
)

// TestStepUpStatusExpired: a step-up left undecided, or granted and not
// used, reads as expired once past its expiry; another task's credential
// sees none of them.
func TestStepUpStatusExpired(t *testing.T) {
	e := newEnv(t, "dev")
	if err := e.reopen(task.Config{ApprovalTTL: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	other := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	g := e.stepUp(cred, stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal"))
	p := e.stepUp(cred, stepUpCall("read", "erp://invoices/2026-Q2/10", `{"id": 10}`, "internal"))
	e.approve(g)
	want := func(id, status string) {
		t.Helper()
		st, err := e.svc.StepUp(cred, id)
		if err != nil || st.Status != status || st.ApprovalID != id || st.TaskID != cred.TaskID {
			t.Errorf("StepUp(%s) = %+v, %v; want %s", id, st, err, status)
		}
	}
	want(g, "granted")
	want(p, "pending")
	e.clk.Add(3 * time.Minute)
	want(g, task.StepUpExpired)
	want(p, task.StepUpExpired)
	if _, err := e.svc.StepUp(other, g); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("another task's credential: %v, want ErrNotFound", err)
	}
}
