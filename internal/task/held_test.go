package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// TestRecordHeldResult: the result of a call whose task ended (completed,
// revoked, a parent's revocation, past its expiry) before its outcome is
// recorded is recorded as cancelled, with the reason and the result as
// output, and the caller told to withhold it; while the task is active it
// is recorded as given. The decision API's RecordResult records a late
// result as given: the agent already has it.
func TestRecordHeldResult(t *testing.T) {
	ctx := context.Background()
	out := json.RawMessage(`{"total":3}`)
	for _, tc := range []struct {
		name string
		end  func(e *env, taskID, parentID string) error
		want string
	}{
		{"active", func(*env, string, string) error { return nil }, ""},
		{"revoked", func(e *env, id, _ string) error { _, err := e.svc.Revoke(ctx, alice, id, "stop"); return err }, task.ReasonTaskRevoked},
		{"completed", func(e *env, id, _ string) error { _, err := e.svc.Complete(ctx, alice, id); return err }, task.ReasonTaskCompleted},
		{"parent revoked", func(e *env, _, parent string) error { _, err := e.svc.Revoke(ctx, alice, parent, "stop"); return err }, task.ReasonTaskRevoked},
		{"past its expiry", func(e *env, _, _ string) error { e.clk.Add(time.Hour); return nil }, task.ReasonTaskExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "dev")
			parent := e.openTask(alice, scope("internal", "dev"), nil)
			child := e.openTask(alice, scope("internal", "dev"), &parent.TaskID)
			cred := e.credential(child.TaskID)
			a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{Gateway: policy.GatewayMCP})
			if err != nil || !a.Allow {
				t.Fatalf("authorize: %+v %v", a, err)
			}
			if err := tc.end(e, child.TaskID, parent.TaskID); err != nil {
				t.Fatal(err)
			}
			held, err := e.svc.RecordHeldResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: out}, task.Request{Gateway: policy.GatewayMCP})
			if err != nil || held.Cancelled != tc.want {
				t.Fatalf("RecordHeldResult: %+v %v, want cancelled %q", held, err, tc.want)
			}
			entry, body := lastEvent(t, e, "output")
			var d struct{ Status, Reason string }
			json.Unmarshal(entry.Event.Data, &d)
			status := "ok"
			if tc.want != "" {
				status = "cancelled"
			}
			if entry.Event.Type != ledger.TypeActionCompleted || d.Status != status || d.Reason != tc.want || string(body) != string(out) {
				t.Errorf("recorded %s %s, output %s: want status %s, reason %q, the result as output", entry.Event.Type, entry.Event.Data, body, status, tc.want)
			}
			// The record replays.
			if err := e.reopen(task.Config{}); err != nil {
				t.Fatalf("reopen: %v", err)
			}
		})
	}

	e := newEnv(t, "dev")
	tk := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(tk.TaskID)
	a, _ := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{Gateway: policy.GatewayAPI})
	b, _ := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/18", `{}`), task.Request{Gateway: policy.GatewayAPI})
	if _, err := e.svc.Revoke(ctx, alice, tk.TaskID, "stop"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: out}); err != nil {
		t.Fatalf("RecordResult after the revocation: %v", err)
	}
	entry, _ := lastEvent(t, e, "")
	var d struct{ Status string }
	if json.Unmarshal(entry.Event.Data, &d); d.Status != "ok" {
		t.Errorf("the decision API's late result recorded %s, want status ok", entry.Event.Data)
	}
	if _, err := e.svc.RecordResult(ctx, cred, b.ActionID, api.ActionResult{Status: "bogus"}); !errors.Is(err, task.ErrInvalid) {
		t.Errorf("status bogus: %v, want ErrInvalid", err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, b.ActionID, api.ActionResult{Status: "cancelled"}); err != nil {
		t.Errorf("status cancelled: %v", err)
	}
}
