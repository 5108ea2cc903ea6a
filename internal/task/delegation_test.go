package task_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// TestChildExpiryCappedAtParent: a child task asked for longer than its
// parent has left expires with the parent, whether it is activated at once
// or by a later approval.
func TestChildExpiryCappedAtParent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	parent, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "short parent", Scope: scope("internal", "dev"), TTL: "10s"})
	if err != nil || parent.State != api.StateActive {
		t.Fatalf("parent: %+v %v", parent, err)
	}
	p, _ := e.svc.Get(parent.TaskID)
	e.clk.Add(2 * time.Second)
	narrow := scope("public", "dev")
	narrow.Tools = []string{"invoices.read"}
	child, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "long child", Scope: narrow, TTL: "15m", Parent: &parent.TaskID})
	if err != nil || child.State != api.StateActive {
		t.Fatalf("child: %+v %v", child, err)
	}
	c, _ := e.svc.Get(child.TaskID)
	if !c.ExpiresAt.Equal(p.ExpiresAt) {
		t.Errorf("child expires at %s, its parent at %s", c.ExpiresAt, p.ExpiresAt)
	}

	// The approval path: in prod a confidential task needs an approver.
	e = newEnv(t, "prod")
	parent, err = e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "short parent", Scope: scope("confidential", "prod"), TTL: "1m"})
	if err != nil || parent.State != api.StatePendingApproval {
		t.Fatalf("parent: %+v %v", parent, err)
	}
	if _, err := e.svc.DecideTask(ctx, bob, parent.TaskID, api.Decide{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	p, _ = e.svc.Get(parent.TaskID)
	child, err = e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "long child", Scope: scope("confidential", "prod"), TTL: "15m", Parent: &parent.TaskID})
	if err != nil || child.State != api.StatePendingApproval {
		t.Fatalf("child: %+v %v (want pending approval)", child, err)
	}
	e.clk.Add(10 * time.Second)
	if _, err := e.svc.DecideTask(ctx, bob, child.TaskID, api.Decide{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	c, _ = e.svc.Get(child.TaskID)
	if c.State != task.StateActive || !c.ExpiresAt.Equal(p.ExpiresAt) {
		t.Errorf("approved child is %s until %s, its parent ends at %s", c.State, c.ExpiresAt, p.ExpiresAt)
	}
}

// appendLongChild appends, as a ledger written before children were capped
// would hold, a parent of ttl 10s and a child of it of ttl 15m, both
// active, and reopens the service on it. It returns their IDs.
func appendLongChild(t *testing.T, e *env) (parent, child string) {
	t.Helper()
	ctx := context.Background()
	now := e.clk.Now()
	sc := task.Scope(scope("internal", "dev"))
	parent, child = "tsk_oldparent", "tsk_oldchild"
	var events []ledger.Event
	open := func(id, ttl, parentID string) {
		env := ledger.Event{Time: now, TaskID: id, Principal: alice.ID, Agent: agent}
		req := env
		req.Type = ledger.TypeTaskRequested
		req.Data = mustJSON(t, map[string]any{"scope": sc, "scope_hash": sc.Hash(), "ttl": ttl, "parent": parentID, "environment": "dev"})
		req.Bodies = map[string][]byte{"intent": []byte("x")}
		dec := env
		dec.Type, dec.DecisionID, dec.PolicyVersion = ledger.TypePolicyDecided, "dec_"+id, e.pol.Version()
		dec.Data = mustJSON(t, map[string]any{"point": "task", "engine": "rego", "effect": "allow", "reasons": []string{}, "obligations": map[string]any{}, "policy_ids": []string{}})
		events = append(events, req, dec)
		if parentID != "" {
			del := env
			del.Type, del.TaskID = ledger.TypeTaskDelegated, parentID
			del.Data = mustJSON(t, map[string]any{"child_task_id": id})
			events = append(events, del)
		}
		d, _ := time.ParseDuration(ttl)
		act := env
		act.Type, act.DecisionID, act.PolicyVersion = ledger.TypeTaskActivated, "dec_"+id, e.pol.Version()
		act.Data = mustJSON(t, map[string]any{"ttl": ttl, "expires_at": now.Add(d)})
		events = append(events, act)
	}
	open(parent, "10s", "")
	open(child, "15m", parent)
	if _, err := e.led.AppendAll(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	return parent, child
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAncestorEndedRefusesChild: once a parent's time is up, its child
// (here one from an older ledger, whose expiry was not capped) is refused
// at every decision point, recorded, before the sweeper has run.
func TestAncestorEndedRefusesChild(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	_, child := appendLongChild(t, e)
	cred := e.credential(child)
	req := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "internal"}
	if a, err := e.svc.Authorize(ctx, cred, req, task.Request{}); err != nil || !a.Allow {
		t.Fatalf("while the parent is live: %+v %v", a, err)
	}
	e.clk.Add(11 * time.Second)
	if _, err := e.svc.Authorize(ctx, cred, req, task.Request{}); code(err) != task.ReasonAncestorEnded {
		t.Errorf("action after the parent expired: %v, want %s", err, task.ReasonAncestorEnded)
	}
	if _, err := e.svc.Visible(ctx, cred, "erp", []task.ListedTool{{Tool: "invoices.read", Operation: "read"}}, task.Request{}); code(err) != task.ReasonAncestorEnded {
		t.Errorf("list after the parent expired: %v, want %s", err, task.ReasonAncestorEnded)
	}
	err := e.svc.RecordCredential(ctx, task.Credential{JTI: "jti-late", TaskID: child, Agent: agent, ExpiresAt: e.clk.Now().Add(time.Minute), Binding: "none"}, "dec_x", "sha256:x")
	if code(err) != task.ReasonAncestorEnded {
		t.Errorf("exchange after the parent expired: %v, want %s", err, task.ReasonAncestorEnded)
	}
	if a, ended := e.svc.EndedAncestor(child); !ended || a.ID == "" {
		t.Errorf("EndedAncestor = %+v, %v", a, ended)
	}
	var rejected int
	for _, typ := range e.eventTypes(child) {
		if typ == ledger.TypeAuthRejected {
			rejected++
		}
	}
	if rejected != 2 {
		t.Errorf("%d auth.rejected events under the child, want 2 (action, list)", rejected)
	}
}
