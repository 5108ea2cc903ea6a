package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/task"
)

func call(tool, resource, args string) api.Authorize {
	return api.Authorize{Tool: tool, Operation: "read", Resource: resource, Arguments: json.RawMessage(args), DataClass: "internal"}
}

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)

	// In scope: allowed, recorded with the keyed digest of the original
	// arguments and the redacted arguments as body.
	args := `{"id": 17, "password": "hunter2"}`
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", args), task.Request{Gateway: policy.GatewayAPI})
	if err != nil || !a.Allow || a.ActionID == "" || a.DecisionID == "" {
		t.Fatalf("in scope: %+v, %v", a, err)
	}
	entry, body := lastEvent(t, e, "arguments")
	if entry.Event.Type != ledger.TypeActionAuthorized || !strings.Contains(string(entry.Event.Data), `"args_mac":"`+task.MACPrefix) {
		t.Errorf("recorded %s %s, want action.authorized with args_mac", entry.Event.Type, entry.Event.Data)
	}
	if diff := cmp.Diff(`{"id":17,"password":"[redacted]"}`, string(body)); diff != "" {
		t.Errorf("arguments body (-want +got):\n%s", diff)
	}

	// Its result is recorded once, only by the task's credential.
	other := e.openTask(alice, scope("internal", "dev"), nil)
	otherCred := e.credential(other.TaskID)
	if _, err := e.svc.RecordResult(ctx, otherCred, a.ActionID, api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrForbidden) {
		t.Errorf("another task's credential records the result: %v", err)
	}
	r, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total": 3}`)})
	if err != nil || r.ActionID != a.ActionID {
		t.Fatalf("RecordResult: %+v, %v", r, err)
	}
	if _, body := lastEvent(t, e, "output"); string(body) != `{"total":3}` {
		t.Errorf("output body %q", body)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok"}); !errors.Is(err, task.ErrConflict) {
		t.Errorf("second result: %v", err)
	}

	// Tool out of scope: denied and recorded.
	d, err := e.svc.Authorize(ctx, cred, call("shell.exec", "erp://invoices/2026-Q3/17", `{}`), task.Request{})
	if err != nil || d.Allow || len(d.Reasons) == 0 {
		t.Fatalf("out of scope: %+v, %v", d, err)
	}
	if entry, _ := lastEvent(t, e, ""); entry.Event.Type != ledger.TypeActionDenied || entry.Event.DecisionID != d.DecisionID {
		t.Errorf("recorded %s for decision %s", entry.Event.Type, entry.Event.DecisionID)
	}

	// Resource out of scope: step-up; the same call passes once after
	// approval, a changed argument does not.
	step := call("invoices.read", "erp://invoices/2025-Q4/3", `{"id": 3}`)
	s1, err := e.svc.Authorize(ctx, cred, step, task.Request{})
	if err != nil || s1.Allow || !s1.ApprovalRequired || s1.ApprovalID == "" {
		t.Fatalf("step-up: %+v, %v", s1, err)
	}
	s2, _ := e.svc.Authorize(ctx, cred, step, task.Request{})
	if s2.ApprovalID != s1.ApprovalID {
		t.Errorf("a retry before approval opened a second step-up %s", s2.ApprovalID)
	}
	pend := e.svc.ListPendingApprovals(bob.ID)
	if len(pend) != 1 || pend[0].Kind != task.KindStepUp || pend[0].Tool != "invoices.read" || string(pend[0].Arguments) != `{"id":3}` {
		t.Fatalf("pending step-ups: %+v", pend)
	}
	if _, err := e.svc.DecideApproval(ctx, alice, s1.ApprovalID, api.Decide{Decision: "approve"}); code(err) != task.ReasonSelfApproval {
		t.Errorf("requester approves own step-up: %v", err)
	}
	if d, err := e.svc.DecideApproval(ctx, bob, s1.ApprovalID, api.Decide{Decision: "approve"}); err != nil || d.State != api.StateActive {
		t.Fatalf("approving step-up: %+v, %v", d, err)
	}
	changed := step
	changed.Arguments = json.RawMessage(`{"id": 4}`)
	if c, err := e.svc.Authorize(ctx, cred, changed, task.Request{}); err != nil || c.Allow {
		t.Errorf("changed argument passed: %+v, %v", c, err)
	}
	if p, err := e.svc.Authorize(ctx, cred, step, task.Request{}); err != nil || !p.Allow {
		t.Fatalf("approved call: %+v, %v", p, err)
	}
	if ap, _ := e.svc.Approval(s1.ApprovalID); ap.UsedBy == "" {
		t.Error("step-up not marked used")
	}
	if p, err := e.svc.Authorize(ctx, cred, step, task.Request{}); err != nil || p.Allow {
		t.Errorf("approved call passed twice: %+v, %v", p, err)
	}

	// Bad input and unknown credentials.
	if _, err := e.svc.Authorize(ctx, cred, call("invoices.read", "x", `[1]`), task.Request{}); !errors.Is(err, task.ErrInvalid) {
		t.Errorf("array arguments: %v", err)
	}
	forged := cred
	forged.JTI = "never-issued"
	if _, err := e.svc.Authorize(ctx, forged, call("invoices.read", "x", `{}`), task.Request{}); code(err) != "unknown_credential" {
		t.Errorf("unrecorded credential: %v", err)
	}
}

// lastEvent returns the newest leaf and, when name is set, its body.
func lastEvent(t *testing.T, e *env, name string) (ledger.Entry, []byte) {
	t.Helper()
	ctx := context.Background()
	size, err := e.store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entry := leafAt(t, e, size-1)
	if name == "" {
		return entry, nil
	}
	b, err := e.store.ReadBody(ctx, ledger.BodyRef{Index: size - 1, Name: name})
	if err != nil {
		t.Fatalf("body %s of %s: %v", name, entry.Event.Type, err)
	}
	return entry, b.Data
}

// leafAt returns the ledger entry at index i.
func leafAt(t *testing.T, e *env, i uint64) ledger.Entry {
	t.Helper()
	leaves, err := e.store.ReadLeaves(context.Background(), i, i+1)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := ledger.ParseLeaf(i, leaves[0])
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

func TestLedgerUnavailableNeverAllows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(out.TaskID)
	e.store.fail.Store(true)
	for _, c := range []api.Authorize{
		call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), // would be allowed
		call("invoices.read", "erp://elsewhere/1", `{}`),         // would step up
		call("shell.exec", "erp://invoices/2026-Q3/17", `{}`),    // would be denied
	} {
		a, err := e.svc.Authorize(ctx, cred, c, task.Request{})
		if a.Allow || !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("%s with the ledger down: %+v, %v", c.Resource, a, err)
		}
	}
	if _, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "x", Scope: scope("internal", "dev")}); !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("Open with the ledger down: %v", err)
	}
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("Complete with the ledger down: %v", err)
	}
	if got, _ := e.svc.Get(out.TaskID); got.State != task.StateActive {
		t.Errorf("state changed without a durable event: %s", got.State)
	}
	e.store.fail.Store(false)
	if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{}); err != nil || !a.Allow {
		t.Errorf("after recovery: %+v, %v", a, err)
	}
}

// TestInexactNumberRefused: arguments holding a number canonical form would
// change (so that the recorded, shown and matched value would differ from
// the one forwarded) are refused, naming where, and nothing is recorded.
func TestInexactNumberRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	size, _ := e.store.Size(ctx)
	for args, path := range map[string]string{
		`{"amount": 12345678901234567891}`:               "arguments.amount",
		`{"ids": [1, 9007199254740993]}`:                 "arguments.ids[1]",
		`{"q": {"ratio": 0.10000000000000000001}}`:       "arguments.q.ratio",
		`{"huge": 1e400}`:                                "arguments.huge",
		`{"id": "12345678901234567891", "n": 1e-400}`:    "arguments.n",
		`{"weird key": 9007199254740992, "ok": 0.1}`:     `arguments["weird key"]`,
		`{"step": 1, "amount": 123456789012345678901.5}`: "arguments.amount",
	} {
		for _, c := range []api.Authorize{
			call("invoices.read", "erp://invoices/2026-Q3/17", args), // would be allowed
			call("invoices.read", "erp://invoices/2026-Q2/9", args),  // would step up
		} {
			_, err := e.svc.Authorize(ctx, cred, c, task.Request{})
			var te *refusal.Error
			if !errors.As(err, &te) || !errors.Is(err, task.ErrInvalid) || te.Code != task.CodeInexactNumber || !strings.HasPrefix(te.Detail, path+":") {
				t.Errorf("%s on %s: %v; want %s naming %s", args, c.Resource, err, task.CodeInexactNumber, path)
			}
		}
	}
	if after, _ := e.store.Size(ctx); after != size {
		t.Errorf("refused arguments appended %d events", after-size)
	}
	// Numbers a double holds exactly pass, whatever their spelling.
	for _, args := range []string{`{"id": 9007199254740991, "ratio": 0.1, "e": 1e2, "f": 1.50, "neg": -0}`, `{"big": 1e300}`} {
		if a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", args), task.Request{}); err != nil || !a.Allow {
			t.Errorf("%s: %+v, %v", args, a, err)
		}
	}
}
