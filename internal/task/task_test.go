package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// eventTypes returns the types of a task's events, in ledger order.
func (e *env) eventTypes(taskID string) []string {
	e.t.Helper()
	tr, err := e.svc.Trace(context.Background(), taskID)
	if err != nil {
		e.t.Fatalf("Trace: %v", err)
	}
	var out []string
	for _, ev := range tr.Events {
		var doc struct {
			Type   string `json:"type"`
			TaskID string `json:"task_id"`
		}
		json.Unmarshal(ev.Event, &doc)
		out = append(out, doc.Type)
	}
	return out
}

func TestOpenDecidesByPolicy(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		scope     api.Scope
		wantState string
		wantN     int
		wantTypes []string
	}{
		{"low risk is active", "dev", scope("internal", "dev"), api.StateActive, 0,
			[]string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeTaskActivated}},
		{"prod confidential needs one approval", "prod", scope("confidential", "prod"), api.StatePendingApproval, 1,
			[]string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeApprovalRequested}},
		{"prod restricted needs two", "prod", scope("restricted", "prod"), api.StatePendingApproval, 2,
			[]string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeApprovalRequested}},
		{"environment out of scope is denied", "prod", scope("internal", "dev"), api.StateDenied, 0,
			[]string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeTaskDenied}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.env)
			out := e.openTask(alice, tt.scope, nil)
			if out.State != tt.wantState || out.ApprovalsRequired != tt.wantN {
				t.Fatalf("state %s with %d approvals, want %s with %d (reasons %q)", out.State, out.ApprovalsRequired, tt.wantState, tt.wantN, out.Reasons)
			}
			if out.ScopeHash != task.Scope(tt.scope).Hash() || out.DecisionID == "" || out.PolicyVersion != e.pol.Version() {
				t.Errorf("answer %+v does not carry the scope hash, decision and policy version", out)
			}
			if diff := cmp.Diff(tt.wantTypes, e.eventTypes(out.TaskID)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			got, _ := e.svc.Get(out.TaskID)
			if string(got.State) != tt.wantState || got.Intent != "Summarize Q3 invoices" || got.Requester != alice.ID {
				t.Errorf("Get = %+v", got)
			}
		})
	}
}

func TestOpenValidates(t *testing.T) {
	e := newEnv(t, "dev")
	ok := api.OpenTask{Agent: agent, Intent: "x", Scope: scope("internal", "dev"), TTL: "15m"}
	missing := "tsk_missing"
	tests := []struct {
		name string
		edit func(*api.OpenTask)
		want string
	}{
		{"no agent", func(o *api.OpenTask) { o.Agent = "" }, "invalid_request"},
		{"no intent", func(o *api.OpenTask) { o.Intent = " " }, "invalid_request"},
		{"huge intent", func(o *api.OpenTask) { o.Intent = string(make([]byte, task.MaxIntentBytes+1)) }, "invalid_request"},
		{"bad ttl", func(o *api.OpenTask) { o.TTL = "soon" }, "invalid_request"},
		{"ttl too long", func(o *api.OpenTask) { o.TTL = "800h" }, "invalid_request"},
		{"empty tools", func(o *api.OpenTask) { o.Scope.Tools = nil }, "invalid_request"},
		{"bad data class", func(o *api.OpenTask) { o.Scope.DataClass = "secret" }, "invalid_request"},
		{"missing parent", func(o *api.OpenTask) { o.Parent = &missing }, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.edit(&req)
			_, err := e.svc.Open(context.Background(), alice, req)
			if got := code(err); got != tt.want {
				t.Errorf("code %q, want %q (err %v)", got, tt.want, err)
			}
		})
	}
	// A TTL above the policy's cap is capped, not refused, when policy allows.
	out, err := e.svc.Open(context.Background(), alice, api.OpenTask{Agent: agent, Intent: "x", Scope: scope("internal", "dev"), TTL: "8h"})
	if err != nil || out.State != api.StateActive {
		t.Fatalf("Open 8h in dev: %+v, %v", out, err)
	}
}

func TestApprovals(t *testing.T) {
	ctx := context.Background()
	approve := api.Decide{Decision: "approve", Reason: "looks right"}

	t.Run("second human approves", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("confidential", "prod"), nil)
		d, err := e.svc.DecideTask(ctx, bob, out.TaskID, approve)
		if err != nil || d.State != api.StateActive {
			t.Fatalf("DecideTask = %+v, %v", d, err)
		}
		got, _ := e.svc.Get(out.TaskID)
		if got.State != task.StateActive || !got.ExpiresAt.Equal(e.clk.Now().Add(15*time.Minute)) {
			t.Errorf("task %s expires %v", got.State, got.ExpiresAt)
		}
	})

	t.Run("self approval refused and recorded", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("confidential", "prod"), nil)
		_, err := e.svc.DecideTask(ctx, alice, out.TaskID, approve)
		if !errors.Is(err, task.ErrForbidden) || code(err) != task.ReasonSelfApproval {
			t.Fatalf("self approval: %v", err)
		}
		types := e.eventTypes(out.TaskID)
		if types[len(types)-1] != ledger.TypeAuthRejected {
			t.Errorf("events %v: the refusal is not recorded", types)
		}
		if got, _ := e.svc.Get(out.TaskID); got.State != task.StatePendingApproval {
			t.Errorf("state %s after self approval", got.State)
		}
	})

	t.Run("two of many for restricted data", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("restricted", "prod"), nil)
		if d, err := e.svc.DecideTask(ctx, bob, out.TaskID, approve); err != nil || d.State != api.StatePendingApproval {
			t.Fatalf("first approval: %+v, %v", d, err)
		}
		if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, approve); code(err) != "already_decided" {
			t.Fatalf("same approver twice: %v", err)
		}
		pend := e.svc.ListPendingApprovals(carol.ID)
		if len(pend) != 1 || pend[0].ApprovalsGiven != 1 || pend[0].ApprovalsRequired != 2 || pend[0].Intent == "" {
			t.Fatalf("pending for carol: %+v", pend)
		}
		if len(e.svc.ListPendingApprovals(bob.ID)) != 0 || len(e.svc.ListPendingApprovals(alice.ID)) != 0 {
			t.Error("bob (decided) or alice (requester) sees the approval as pending for them")
		}
		if d, err := e.svc.DecideTask(ctx, carol, out.TaskID, approve); err != nil || d.State != api.StateActive {
			t.Fatalf("second approval: %+v, %v", d, err)
		}
	})

	t.Run("one deny denies", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("restricted", "prod"), nil)
		e.svc.DecideTask(ctx, bob, out.TaskID, approve)
		d, err := e.svc.DecideTask(ctx, carol, out.TaskID, api.Decide{Decision: "deny", Reason: "too broad"})
		if err != nil || d.State != api.StateDenied {
			t.Fatalf("deny: %+v, %v", d, err)
		}
		if _, err := e.svc.DecideTask(ctx, human("oidc:test#dave"), out.TaskID, approve); !errors.Is(err, task.ErrConflict) {
			t.Errorf("approving a denied task: %v", err)
		}
	})

	t.Run("expired approval refused", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("confidential", "prod"), nil)
		e.clk.Add(task.DefaultApprovalTTL + time.Second)
		if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, approve); code(err) != task.ReasonApprovalTTL {
			t.Fatalf("late approval: %v", err)
		}
		if n, err := e.svc.Sweep(ctx); n != 1 || err != nil {
			t.Fatalf("Sweep = %d, %v", n, err)
		}
		if got, _ := e.svc.Get(out.TaskID); got.State != task.StateExpired {
			t.Errorf("state %s, want expired", got.State)
		}
	})

	t.Run("bad decision", func(t *testing.T) {
		e := newEnv(t, "prod")
		out := e.openTask(alice, scope("confidential", "prod"), nil)
		if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, api.Decide{Decision: "maybe"}); !errors.Is(err, task.ErrInvalid) {
			t.Errorf("decision maybe: %v", err)
		}
		if _, err := e.svc.DecideTask(ctx, bob, "tsk_nope", approve); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("unknown task: %v", err)
		}
	})
}

func TestEndingRevokesCredentialsAndChildren(t *testing.T) {
	ctx := context.Background()
	for _, end := range []string{"complete", "revoke", "expire"} {
		t.Run(end, func(t *testing.T) {
			e := newEnv(t, "dev")
			parent := e.openTask(alice, scope("internal", "dev"), nil)
			pc := e.credential(parent.TaskID)
			narrow := scope("public", "dev")
			narrow.Tools = []string{"invoices.read"}
			child := e.openTask(alice, narrow, &parent.TaskID)
			if child.State != api.StateActive {
				t.Fatalf("child %+v", child)
			}
			cc := e.credential(child.TaskID)
			grand := e.openTask(alice, narrow, &child.TaskID)
			var err error
			switch end {
			case "complete":
				_, err = e.svc.Complete(ctx, alice, parent.TaskID)
			case "revoke":
				_, err = e.svc.Revoke(ctx, admin, parent.TaskID, "incident 42")
			case "expire":
				e.clk.Add(16 * time.Minute)
				var n int
				n, err = e.svc.Sweep(ctx)
				if n != 3 {
					t.Errorf("Sweep expired %d tasks, want 3", n)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, jti := range []string{pc.JTI, cc.JTI} {
				if c, _ := e.svc.Credential(jti); !c.Revoked || e.svc.CredentialLive(jti) {
					t.Errorf("credential %s still live", jti)
				}
			}
			for _, id := range []string{child.TaskID, grand.TaskID} {
				if got, _ := e.svc.Get(id); !got.State.Ended() {
					t.Errorf("descendant %s is %s", id, got.State)
				}
			}
			if _, err := e.svc.Authorize(ctx, pc, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}, task.Request{}); !errors.Is(err, task.ErrForbidden) {
				t.Errorf("authorize after %s: %v", end, err)
			}
		})
	}

	t.Run("only requester or admin", func(t *testing.T) {
		e := newEnv(t, "dev")
		out := e.openTask(alice, scope("internal", "dev"), nil)
		// bob, an approver with nothing to decide on the task, does not
		// see it; an admin would.
		if _, err := e.svc.Complete(ctx, bob, out.TaskID); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("bob completes: %v", err)
		}
		if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Complete(ctx, alice, out.TaskID); !errors.Is(err, task.ErrConflict) {
			t.Errorf("completing twice: %v", err)
		}
	})

	t.Run("child may not widen", func(t *testing.T) {
		e := newEnv(t, "dev")
		parent := e.openTask(alice, scope("internal", "dev"), nil)
		wide := scope("internal", "dev")
		wide.Tools = append(wide.Tools, "shell.exec")
		_, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "x", Scope: wide, Parent: &parent.TaskID})
		if code(err) != "scope_widens" {
			t.Errorf("widening child: %v", err)
		}
	})
}

// TestScopeTools: a task's tool patterns, as a copy the caller may keep,
// and not found for an unknown task.
func TestScopeTools(t *testing.T) {
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	tools, err := e.svc.ScopeTools(out.TaskID)
	if err != nil || !slices.Equal(tools, []string{"invoices.*", "mail.send"}) {
		t.Fatalf("ScopeTools = %q, %v", tools, err)
	}
	tools[0] = "changed"
	if again, _ := e.svc.ScopeTools(out.TaskID); again[0] != "invoices.*" {
		t.Fatalf("the caller's copy changed the task: %q", again)
	}
	if _, err := e.svc.ScopeTools("tsk_none"); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("unknown task: %v", err)
	}
}
