package task_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

func TestRecordExchangeAndDecision(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	opened := e.openTask(alice, scope("internal", "dev"), nil)
	in := &policy.Input{Agent: policy.Agent{ID: agent}, Task: policy.Task{ID: opened.TaskID}}
	dec := e.pol.Evaluate(ctx, policy.PointExchange, in)

	c := task.Credential{JTI: "jti-1", TaskID: opened.TaskID, Agent: agent, ExpiresAt: e.clk.Now().Add(time.Minute), Binding: "dpop"}
	if err := e.svc.RecordExchange(ctx, c, dec, in); err != nil {
		t.Fatalf("RecordExchange: %v", err)
	}
	if err := e.svc.RecordExchange(ctx, c, dec, in); code(err) != "jti_reused" {
		t.Errorf("RecordExchange twice: %v, want jti_reused", err)
	}
	other := c
	other.JTI, other.Agent = "jti-2", "spiffe://example.org/agent/other"
	if err := e.svc.RecordExchange(ctx, other, dec, in); code(err) != "agent_mismatch" {
		t.Errorf("RecordExchange for another agent: %v, want agent_mismatch", err)
	}
	if err := e.svc.RecordDecision(ctx, opened.TaskID, agent, dec, in); err != nil {
		t.Fatalf("RecordDecision: %v", err)
	}
	if err := e.svc.RecordRejection(ctx, task.Rejection{TaskID: opened.TaskID, Agent: "spiffe://example.org/agent/b",
		Reason: "agent_mismatch", Detail: "not this agent's task"}); err != nil {
		t.Fatalf("RecordRejection: %v", err)
	}
	if err := e.svc.RecordRejection(ctx, task.Rejection{TaskID: "tsk_unknown", Reason: "invalid_token"}); err != nil {
		t.Fatalf("RecordRejection without a known task: %v", err)
	}
	want := []string{ledger.TypeTaskRequested, ledger.TypePolicyDecided, ledger.TypeTaskActivated,
		ledger.TypePolicyDecided, ledger.TypeCredentialIssued, ledger.TypePolicyDecided, ledger.TypeAuthRejected}
	if diff := cmp.Diff(want, e.eventTypes(opened.TaskID)); diff != "" {
		t.Errorf("task events (-want +got):\n%s", diff)
	}
	if !e.svc.CredentialLive("jti-1") {
		t.Error("the recorded credential is not live")
	}

	// The decision and credential are replayed identically, and the
	// task ends with its credential revoked.
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if diff := cmp.Diff(want, e.eventTypes(opened.TaskID)); diff != "" {
		t.Errorf("task events after replay (-want +got):\n%s", diff)
	}
	if got := e.svc.RevokedCredentials(e.clk.Now()); len(got) != 0 {
		t.Errorf("revoked before the task ended: %+v", got)
	}
	if _, err := e.svc.Complete(ctx, alice, opened.TaskID); err != nil {
		t.Fatal(err)
	}
	revoked := e.svc.RevokedCredentials(e.clk.Now())
	if len(revoked) != 1 || revoked[0].JTI != "jti-1" || !revoked[0].Revoked {
		t.Errorf("RevokedCredentials = %+v, want jti-1", revoked)
	}
	if got := e.svc.RevokedCredentials(e.clk.Now().Add(time.Hour)); len(got) != 0 {
		t.Errorf("RevokedCredentials after expiry = %+v, want none", got)
	}
	if diff := cmp.Diff([]string{opened.TaskID}, e.svc.EndedTasks(e.clk.Now().Add(-time.Minute))); diff != "" {
		t.Errorf("EndedTasks (-want +got):\n%s", diff)
	}
	if got := e.svc.EndedTasks(e.clk.Now().Add(time.Second)); len(got) != 0 {
		t.Errorf("EndedTasks since later = %v, want none", got)
	}
}

func TestRecordExchangeLedgerDown(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	opened := e.openTask(alice, scope("internal", "dev"), nil)
	in := &policy.Input{Agent: policy.Agent{ID: agent}, Task: policy.Task{ID: opened.TaskID}}
	dec := e.pol.Evaluate(ctx, policy.PointExchange, in)
	e.store.fail.Store(true)
	c := task.Credential{JTI: "jti-down", TaskID: opened.TaskID, Agent: agent, ExpiresAt: e.clk.Now().Add(time.Minute), Binding: "none"}
	if err := e.svc.RecordExchange(ctx, c, dec, in); err == nil {
		t.Fatal("RecordExchange succeeded with the ledger down")
	}
	if e.svc.CredentialLive("jti-down") {
		t.Error("a credential the ledger did not record is live")
	}
}
