package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

var auditor = human("oidc:test#audrey", identity.RoleAuditor)

// TestLegalHold places and lifts holds: who may, on which tasks, what a
// hold covers (the task and its descendants), and that the state rebuilt
// at start knows them.
func TestLegalHold(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	parent := e.openTask(alice, scope("internal", "dev"), nil)
	e.credential(parent.TaskID)
	child := e.openTask(alice, scope("internal", "dev"), &parent.TaskID)
	other := e.openTask(alice, scope("internal", "dev"), nil)
	if _, err := e.svc.Complete(ctx, alice, other.TaskID); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		who    identity.Principal
		task   string
		reason string
		code   string
	}{
		{"a requester may not", alice, parent.TaskID, "x", "not_auditor"},
		{"an approver sees no task", bob, parent.TaskID, "x", "not_found"},
		{"a reason is required", auditor, parent.TaskID, "", "invalid_request"},
		{"control characters in the reason", auditor, parent.TaskID, "a\x1bb", "invalid_request"},
		{"an unknown task", auditor, "tsk_nope", "x", "not_found"},
	} {
		if _, err := e.svc.Hold(ctx, tt.who, tt.task, tt.reason); code(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
	if _, err := e.svc.Hold(ctx, auditor, parent.TaskID, "litigation 2026-14"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Hold(ctx, admin, other.TaskID, "an ended task's records"); err != nil {
		t.Fatalf("holding an ended task: %v", err)
	}
	if _, err := e.svc.Hold(ctx, admin, parent.TaskID, "again"); code(err) != "task_held" {
		t.Errorf("holding a held task: %v", err)
	}
	if _, err := e.svc.Release(ctx, auditor, child.TaskID, "not its own"); code(err) != "task_not_held" {
		t.Errorf("releasing a child of a held task: %v", err)
	}
	check := func(when string) {
		t.Helper()
		h, ok := e.svc.HoldOn(child.TaskID)
		if !ok || h.TaskID != parent.TaskID || h.By != auditor.ID || h.Reason != "litigation 2026-14" {
			t.Errorf("%s: the child's hold is %+v, %v", when, h, ok)
		}
		v, err := e.svc.View(child.TaskID)
		if err != nil || v.Hold == nil || v.Hold.TaskID != parent.TaskID {
			t.Errorf("%s: the child's view: %+v, %v", when, v.Hold, err)
		}
		if hs := e.svc.Holds(); len(hs) != 2 || len(hs[0].Covers) != 2 || hs[1].Hold.TaskID != other.TaskID {
			t.Errorf("%s: holds %+v", when, hs)
		}
	}
	check("held")
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	check("after a restart")

	if _, err := e.svc.Release(ctx, admin, parent.TaskID, "case closed"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.svc.HoldOn(child.TaskID); ok {
		t.Error("the child is still held after its parent's release")
	}
	if rs := e.svc.ReleasedSince(0); len(rs) != 1 || rs[0].TaskID != parent.TaskID {
		t.Errorf("releases: %+v", rs)
	}
	if got := e.eventTypes(parent.TaskID); got[len(got)-2] != ledger.TypeTaskHeld || got[len(got)-1] != ledger.TypeTaskReleased {
		t.Errorf("the parent's events end %v", got)
	}
}

// TestEraseUnderHold: a body of a held task is not erased by request
// unless forced, and a forced erasure names the hold it overrode; an
// erased intent is no longer shown.
func TestEraseUnderHold(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	parent := e.openTask(alice, scope("internal", "dev"), nil)
	e.credential(parent.TaskID)
	child := e.openTask(alice, scope("internal", "dev"), &parent.TaskID)
	ct, _ := e.svc.Get(child.TaskID)
	intent := ledger.BodyRef{Index: ct.RequestedIndex, Name: "intent"}
	held, err := e.svc.Hold(ctx, auditor, parent.TaskID, "litigation 2026-14")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EraseBody(ctx, admin, intent, "request 7", false); code(err) != "legal_hold" || !errors.Is(err, task.ErrConflict) {
		t.Fatalf("erasing under a hold: %v", err)
	}
	if _, err := e.store.ReadBody(ctx, intent); err != nil {
		t.Fatalf("the refused erasure erased: %v", err)
	}
	idx, err := e.svc.EraseBody(ctx, admin, intent, "court order 5", true)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := e.store.ReadLeaves(ctx, idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := ledger.ParseLeaf(idx, leaves[0])
	if err != nil {
		t.Fatal(err)
	}
	var eb ledger.ErasedBody
	if err := json.Unmarshal(ent.Event.Data, &eb); err != nil || eb.OverridesHold == nil || *eb.OverridesHold != held.Hold.Index ||
		ent.Event.TaskID != child.TaskID || ent.Event.Principal != admin.ID {
		t.Fatalf("the forced erasure: %+v %s %v", ent.Event, ent.Event.Data, err)
	}
	if v, _ := e.svc.View(child.TaskID); v.Intent != "" {
		t.Errorf("the erased intent is still shown: %q", v.Intent)
	}
	if _, err := e.svc.EraseBody(ctx, admin, intent, "again", true); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("erasing twice: %v", err)
	}
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.svc.View(child.TaskID); v.Intent != "" {
		t.Errorf("after a restart the erased intent is %q", v.Intent)
	}
}
