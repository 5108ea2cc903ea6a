package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// busy runs a scenario touching every event type and returns the tasks.
func busy(t testing.TB, e *env) []string {
	ctx := context.Background()
	a := e.openTask(alice, scope("internal", "prod"), nil)
	b := e.openTask(alice, scope("restricted", "prod"), nil)
	e.svc.DecideTask(ctx, bob, b.TaskID, api.Decide{Decision: "approve"})
	e.svc.DecideTask(ctx, carol, b.TaskID, api.Decide{Decision: "approve"})
	c := e.openTask(alice, scope("confidential", "prod"), nil)
	e.svc.DecideTask(ctx, bob, c.TaskID, api.Decide{Decision: "deny"})
	cred := e.credential(a.TaskID)
	ok, _ := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{"n":1}`), task.Request{})
	e.svc.RecordResult(ctx, cred, ok.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`[1]`)})
	su, _ := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://other/1", `{"n":2}`), task.Request{})
	e.svc.DecideApproval(ctx, bob, su.ApprovalID, api.Decide{Decision: "approve"})
	e.svc.Authorize(ctx, cred, call("invoices.read", "erp://other/1", `{"n":2}`), task.Request{})
	child := e.openTask(alice, scope("internal", "prod"), &a.TaskID)
	e.svc.Complete(ctx, alice, a.TaskID)
	return []string{a.TaskID, b.TaskID, c.TaskID, child.TaskID}
}

func snapshot(t *testing.T, e *env, ids []string) map[string]any {
	out := map[string]any{}
	for _, id := range ids {
		tk, err := e.svc.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := e.svc.View(id)
		out[id] = []any{tk, v}
		for _, jti := range tk.Credentials {
			c, _ := e.svc.Credential(jti)
			out[jti] = c
		}
		if tk.ApprovalID != "" {
			a, _ := e.svc.Approval(tk.ApprovalID)
			out[tk.ApprovalID] = a
		}
	}
	all, _ := e.svc.List("")
	out["list"] = all
	out["pending"] = e.svc.ListPendingApprovals("nobody")
	return out
}

func TestReplayAfterRestartIsIdentical(t *testing.T) {
	e := newEnv(t, "prod")
	ids := busy(t, e)
	before := snapshot(t, e, ids)
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, e, ids)); diff != "" {
		t.Errorf("state after replay (-before +after):\n%s", diff)
	}
}

func TestProjectionTamperingIsCaught(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		sql  string
		want string
	}{
		{"revoked task set active", `UPDATE tasks SET state = 'active' WHERE state = 'completed'`, "state is \"active\" but the ledger implies \"completed\""},
		{"approval inserted", `INSERT INTO approvals VALUES ('apr_forged', 'tsk_x', 'task', 'granted', 1, 1, '', '', '', '', '')`, "approvals row apr_forged is not implied"},
		{"credential un-revoked", `UPDATE credentials SET revoked = 0`, "revoked is \"0\" but the ledger implies \"1\""},
		{"task deleted", `DELETE FROM tasks WHERE state = 'denied'`, "is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "prod")
			busy(t, e)
			if diffs, err := task.CheckProjections(ctx, e.store, e.store.DB()); err != nil || len(diffs) != 0 {
				t.Fatalf("untouched tables: %v, %v", diffs, err)
			}
			if _, err := e.store.DB().ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			diffs, err := task.CheckProjections(ctx, e.store, e.store.DB())
			if err != nil || len(diffs) == 0 || !strings.Contains(strings.Join(diffs, "\n"), tt.want) {
				t.Errorf("CheckProjections = %q, %v; want a line with %q", diffs, err, tt.want)
			}
			err = e.reopen(task.Config{})
			var pm *task.ProjectionMismatchError
			if !errors.As(err, &pm) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start on tampered tables: %v", err)
			}
			// Told to, the service starts and rewrites the rows from the ledger.
			if err := e.reopen(task.Config{AllowProjectionMismatch: true}); err != nil {
				t.Fatal(err)
			}
			if diffs, err := task.CheckProjections(ctx, e.store, e.store.DB()); err != nil || len(diffs) != 0 {
				t.Errorf("after repair: %v, %v", diffs, err)
			}
		})
	}
}

func TestProjectionCatchesUpAfterCrash(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	// Events the tables never saw, as after a crash between the ledger
	// commit and the projection write.
	e.store.DB().ExecContext(ctx, `UPDATE task_projection SET value = '-1'`)
	e.store.DB().ExecContext(ctx, `DELETE FROM tasks`)
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatalf("recovery: %v", err)
	}
	var state string
	if err := e.store.DB().QueryRowContext(ctx, `SELECT state FROM tasks WHERE task_id = ?`, out.TaskID).Scan(&state); err != nil || state != "active" {
		t.Errorf("row after recovery: %q, %v", state, err)
	}
}

func entry(i uint64, typ, taskID, principal string, data any) ledger.Entry {
	b, _ := json.Marshal(data)
	return ledger.Entry{Index: i, Event: ledger.Event{Type: typ, Time: time.Unix(1e9, 0).UTC(), TaskID: taskID,
		Principal: principal, Agent: agent, DecisionID: "dec_1", PolicyVersion: "sha256:p", Data: b}}
}

func TestApplyRefusesIncoherentEvents(t *testing.T) {
	s := task.Scope(scope("internal", "dev"))
	requested := entry(0, ledger.TypeTaskRequested, "tsk_a", alice.ID, map[string]any{"scope": s, "scope_hash": s.Hash(), "ttl": "15m", "environment": "dev"})
	approvalDecision := map[string]any{"point": "task", "effect": "require_approval", "obligations": map[string]any{"approvals": 1}}
	pending := []ledger.Entry{requested,
		entry(1, ledger.TypePolicyDecided, "tsk_a", alice.ID, approvalDecision),
		entry(2, ledger.TypeApprovalRequested, "tsk_a", alice.ID, map[string]any{"approval_id": "apr_1", "kind": "task", "approvals_required": 1, "expires_at": time.Unix(2e9, 0).UTC(), "scope_hash": s.Hash()}),
	}
	tests := []struct {
		name   string
		before []ledger.Entry
		bad    ledger.Entry
	}{
		{"activation of an unknown task", nil, entry(0, ledger.TypeTaskActivated, "tsk_x", alice.ID, map[string]any{"expires_at": time.Unix(2e9, 0)})},
		{"activation while pending", pending, entry(3, ledger.TypeTaskActivated, "tsk_a", alice.ID, map[string]any{"expires_at": time.Unix(2e9, 0)})},
		{"approval by the requester", pending, entry(3, ledger.TypeApprovalGranted, "tsk_a", alice.ID, map[string]any{"approval_id": "apr_1", "kind": "task", "approver": alice.ID, "expires_at": time.Unix(2e9, 0).UTC(), "scope_hash": s.Hash()})},
		{"approval of another scope", pending, entry(3, ledger.TypeApprovalGranted, "tsk_a", alice.ID, map[string]any{"approval_id": "apr_1", "kind": "task", "approver": bob.ID, "expires_at": time.Unix(2e9, 0).UTC(), "scope_hash": "sha256:other"})},
		{"action under an unknown task", nil, entry(0, ledger.TypeActionAuthorized, "tsk_x", alice.ID, map[string]any{"action_id": "act_1"})},
		{"task requested twice", []ledger.Entry{requested}, requested},
		{"scope hash mismatch", nil, entry(0, ledger.TypeTaskRequested, "tsk_b", alice.ID, map[string]any{"scope": s, "scope_hash": "sha256:x", "ttl": "15m"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := task.NewState()
			for _, e := range tt.before {
				if err := st.Apply(e); err != nil {
					t.Fatalf("setup event %s: %v", e.Event.Type, err)
				}
			}
			if err := st.Apply(tt.bad); !errors.Is(err, task.ErrIncoherent) {
				t.Errorf("Apply = %v, want ErrIncoherent", err)
			}
		})
	}
}

// FuzzApply feeds arbitrary event data to Apply: it must return an error or
// nil, never panic.
func FuzzApply(f *testing.F) {
	s := task.Scope(scope("internal", "dev"))
	good, _ := json.Marshal(map[string]any{"scope": s, "scope_hash": s.Hash(), "ttl": "15m"})
	f.Add(ledger.TypeTaskRequested, good, ledger.TypeTaskActivated, []byte(`{"expires_at":"2030-01-01T00:00:00Z"}`))
	f.Add(ledger.TypeTaskRequested, good, ledger.TypeApprovalRequested, []byte(`{"approval_id":"a","kind":"task","approvals_required":1}`))
	f.Add(ledger.TypeActionAuthorized, []byte(`{"action_id":"x"}`), ledger.TypeActionCompleted, []byte(`{"action_id":"x"}`))
	f.Add(ledger.TypePolicyDecided, []byte(`{"point":"task"}`), ledger.TypeCredentialRevoked, []byte(`null`))
	f.Fuzz(func(t *testing.T, t1 string, d1 []byte, t2 string, d2 []byte) {
		st := task.NewState()
		for i, ev := range []ledger.Entry{
			{Index: 0, Event: ledger.Event{Type: t1, TaskID: "tsk_a", Principal: "p", Agent: "a", JTI: "j", Data: d1}},
			{Index: 1, Event: ledger.Event{Type: t2, TaskID: "tsk_a", Principal: "q", Agent: "a", JTI: "j", Data: d2}},
		} {
			if err := st.Apply(ev); err != nil && !errors.Is(err, task.ErrIncoherent) {
				t.Fatalf("event %d: error %v does not wrap ErrIncoherent", i, err)
			}
		}
	})
}
