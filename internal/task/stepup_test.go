package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/policy/defaultpack"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// stepUpCall is a call the default pack holds for step-up approval: its
// tool and operation are in scope("internal", …), its resource is not.
func stepUpCall(op, resource, args, class string) api.Authorize {
	return api.Authorize{Tool: "invoices.read", Operation: op, Resource: resource, Arguments: json.RawMessage(args), DataClass: class}
}

// stepUp asks for c and returns the approval it is held for.
func (e *env) stepUp(cred task.VerifiedCredential, c api.Authorize) string {
	e.t.Helper()
	out, err := e.svc.Authorize(context.Background(), cred, c, task.Request{Gateway: policy.GatewayAPI})
	if err != nil || out.Allow || !out.ApprovalRequired || out.ApprovalID == "" {
		e.t.Fatalf("%s %s on %s: %+v, %v; want a step-up", c.Tool, c.Operation, c.Resource, out, err)
	}
	return out.ApprovalID
}

func (e *env) approve(id string) {
	e.t.Helper()
	if _, err := e.svc.DecideApproval(context.Background(), bob, id, api.Decide{Decision: "approve"}); err != nil {
		e.t.Fatalf("approving %s: %v", id, err)
	}
}

// passesOnce checks that c is allowed exactly once.
func (e *env) passesOnce(cred task.VerifiedCredential, c api.Authorize) {
	e.t.Helper()
	ctx := context.Background()
	if out, err := e.svc.Authorize(ctx, cred, c, task.Request{}); err != nil || !out.Allow {
		e.t.Fatalf("the approved call: %+v, %v", out, err)
	}
	if out, err := e.svc.Authorize(ctx, cred, c, task.Request{}); err != nil || out.Allow {
		e.t.Fatalf("the approved call passed twice: %+v, %v", out, err)
	}
}

// TestStepUpBoundToResource is the attack: an approval for invoices.read on
// a harmless invoice must not let the same tool and arguments read payroll,
// and the payroll call must be shown to the approver under its own ID.
func TestStepUpBoundToResource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	invoice := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	payroll := stepUpCall("read", "erp://payroll/executive-salaries", `{"id": 9}`, "internal")

	first := e.stepUp(cred, invoice)
	second := e.stepUp(cred, payroll)
	if second == first {
		t.Fatalf("the payroll call was handed the invoice call's approval %s", first)
	}
	shown := map[string]string{}
	for _, p := range e.svc.ListPendingApprovals(bob.ID) {
		shown[p.ApprovalID] = p.Resource
	}
	if shown[first] != invoice.Resource || shown[second] != payroll.Resource {
		t.Fatalf("the approver is shown %v, want each call under its own approval", shown)
	}
	e.approve(first)
	out, err := e.svc.Authorize(ctx, cred, payroll, task.Request{})
	if err != nil || out.Allow {
		t.Fatalf("the payroll call passed on the invoice call's approval: %+v, %v", out, err)
	}
	if out.ApprovalID != second {
		t.Errorf("the payroll retry is held for %s, want its own pending %s", out.ApprovalID, second)
	}
	e.passesOnce(cred, invoice)
}

// TestStepUpBoundToEveryField: a call that differs from the approved one in
// any field the approver was shown is another call, with its own approval.
func TestStepUpBoundToEveryField(t *testing.T) {
	ctx := context.Background()
	base := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	for name, change := range map[string]func(*api.Authorize){
		"operation":  func(c *api.Authorize) { c.Operation = "send" },
		"data_class": func(c *api.Authorize) { c.DataClass = "public" },
		"arguments":  func(c *api.Authorize) { c.Arguments = json.RawMessage(`{"id": 10}`) },
		"resource":   func(c *api.Authorize) { c.Resource = "erp://invoices/2026-Q2/10" },
		"tool":       func(c *api.Authorize) { c.Tool = "invoices.export" },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "dev")
			cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
			approved := e.stepUp(cred, base)
			e.approve(approved)
			other := base
			change(&other)
			out, err := e.svc.Authorize(ctx, cred, other, task.Request{})
			if err != nil || out.Allow || !out.ApprovalRequired {
				t.Fatalf("a call with another %s: %+v, %v; want a step-up of its own", name, out, err)
			}
			if out.ApprovalID == approved {
				t.Fatalf("a call with another %s was handed approval %s", name, approved)
			}
			e.passesOnce(cred, base)
		})
	}
}

// TestStepUpBoundToPolicyVersion: after the policy changes, the approved
// call asks again, under a new approval.
func TestStepUpBoundToPolicyVersion(t *testing.T) {
	ctx := context.Background()
	dir, pol := packCopy(t, nil)
	e := newEnvPolicy(t, "dev", pol)
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	c := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	pending := e.stepUp(cred, c)

	rego := filepath.Join(dir, "writ.rego")
	src, err := os.ReadFile(rego)
	if err != nil {
		t.Fatal(err)
	}
	before := pol.Version()
	if err := os.WriteFile(rego, append(src, "\n# reviewed\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pol.Reload(ctx); err != nil || pol.Version() == before {
		t.Fatalf("reload: %v (version %s)", err, pol.Version())
	}
	// The pending request was made under the old version: not reused.
	renewed := e.stepUp(cred, c)
	if renewed == pending {
		t.Fatalf("a request under policy %s reused approval %s made under %s", pol.Version(), pending, before)
	}
	// Granted under the old version: void under the new one.
	e.approve(pending)
	if out, err := e.svc.Authorize(ctx, cred, c, task.Request{}); err != nil || out.Allow || out.ApprovalID != renewed {
		t.Fatalf("after a policy change: %+v, %v; want the call held for %s", out, err, renewed)
	}
	e.approve(renewed)
	e.passesOnce(cred, c)
}

// packCopy writes the default Rego pack, edited by edit, to a directory
// and loads it.
func packCopy(t *testing.T, edit func(string) string) (string, *policy.Policy) {
	t.Helper()
	dir := t.TempDir()
	pack, _ := defaultpack.FS("rego")
	if err := os.CopyFS(dir, pack); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		rego := filepath.Join(dir, "writ.rego")
		src, err := os.ReadFile(rego)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rego, []byte(edit(string(src))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := policy.New(context.Background(), policy.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pol.Close() })
	return dir, pol
}

// TestStepUpAcrossRestart: the keyed digest comes from the ledger's key, so
// a step-up granted before a restart still recognises its call after it.
func TestStepUpAcrossRestart(t *testing.T) {
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	c := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	e.approve(e.stepUp(cred, c))
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	e.passesOnce(cred, c)
}

// TestOutputNotRecorded: an output the policy says not to record leaves
// only its keyed digest, never a plain one.
func TestOutputNotRecorded(t *testing.T) {
	ctx := context.Background()
	_, pol := packCopy(t, func(src string) string {
		return strings.Replace(src, `"record_output": true`, `"record_output": false`, 1)
	})
	e := newEnvPolicy(t, "dev", pol)
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{"id": 17}`), task.Request{})
	if err != nil || !a.Allow || a.RecordOutput == nil || *a.RecordOutput {
		t.Fatalf("authorize: %+v, %v; want an allow that does not record the output", a, err)
	}
	output := `{"salary":250000}`
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(output)}); err != nil {
		t.Fatal(err)
	}
	entry, _ := lastEvent(t, e, "")
	var d map[string]any
	json.Unmarshal(entry.Event.Data, &d)
	if mac, _ := d["output_mac"].(string); !strings.HasPrefix(mac, task.MACPrefix) || len(entry.Commitments) != 0 || d["output_digest"] != nil {
		t.Errorf("action.completed %s with bodies %v: want output_mac only", entry.Event.Data, entry.Commitments)
	}
	testkit.NoneIn(t, "leaf", testkit.PlainDigests(output), e.leaves())
}

// TestStepUpExpiry: an expired step-up, granted or pending, covers nothing;
// the call asks again under a new approval.
func TestStepUpExpiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	if err := e.reopen(task.Config{ApprovalTTL: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	granted := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	pending := stepUpCall("read", "erp://invoices/2026-Q2/10", `{"id": 10}`, "internal")
	g := e.stepUp(cred, granted)
	p := e.stepUp(cred, pending)
	e.approve(g)
	e.clk.Add(3 * time.Minute)
	for c, old := range map[*api.Authorize]string{&granted: g, &pending: p} {
		out, err := e.svc.Authorize(ctx, cred, *c, task.Request{})
		if err != nil || out.Allow || !out.ApprovalRequired || out.ApprovalID == old {
			t.Errorf("%s after its approval %s expired: %+v, %v; want a new step-up", c.Resource, old, out, err)
		}
	}
}

// TestStepUpConcurrentRetries: identical retries of an approved call at
// the same time pass once between them.
func TestStepUpConcurrentRetries(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	c := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	e.approve(e.stepUp(cred, c))
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]api.Authorized, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = e.svc.Authorize(ctx, cred, c, task.Request{})
		})
	}
	close(start)
	wg.Wait()
	allowed := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("retry %d: %v", i, errs[i])
		}
		if results[i].Allow {
			allowed++
		}
	}
	if allowed != 1 {
		t.Errorf("%d of %d concurrent retries of one approved call passed, want 1", allowed, n)
	}
}

// TestReplayRefusesStepUpForAnotherCall: the state machine checks the same
// binding when it applies the action.authorized that consumes a step-up,
// so a ledger (or bundle) that holds a consumption for another call is
// caught on replay.
func TestReplayRefusesStepUpForAnotherCall(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	id := e.stepUp(cred, stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal"))
	e.approve(id)

	size, err := e.store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := e.store.ReadLeaves(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var entries []ledger.Entry
	var held ledger.Event // the action.denied that asked for the step-up
	for i, leaf := range leaves {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, ent)
		if ent.Event.Type == ledger.TypeActionDenied {
			held = ent.Event
		}
	}
	// consume is the action.authorized writ would record for the approved
	// call, with change applied to its data and envelope.
	consume := func(change func(d map[string]any, ev *ledger.Event)) ledger.Entry {
		var d map[string]any
		if err := json.Unmarshal(held.Data, &d); err != nil {
			t.Fatal(err)
		}
		delete(d, "approval_id")
		d["action_id"], d["step_up"] = "act_replayed", id
		ev := held
		ev.Type, ev.Bodies = ledger.TypeActionAuthorized, nil
		change(d, &ev)
		ev.Data, _ = json.Marshal(d)
		return ledger.Entry{Index: size, Event: ev}
	}
	replay := func(last ledger.Entry) error {
		st := task.NewState()
		for _, ent := range entries {
			if err := st.Apply(ent); err != nil {
				t.Fatalf("replaying index %d: %v", ent.Index, err)
			}
		}
		return st.Apply(last)
	}
	if err := replay(consume(func(map[string]any, *ledger.Event) {})); err != nil {
		t.Fatalf("the approved call's consumption: %v", err)
	}
	for name, change := range map[string]func(map[string]any, *ledger.Event){
		"resource":       func(d map[string]any, _ *ledger.Event) { d["resource"] = "erp://payroll/executive-salaries" },
		"operation":      func(d map[string]any, _ *ledger.Event) { d["operation"] = "send" },
		"data_class":     func(d map[string]any, _ *ledger.Event) { d["data_class"] = "public" },
		"tool":           func(d map[string]any, _ *ledger.Event) { d["tool"] = "invoices.export" },
		"args_mac":       func(d map[string]any, _ *ledger.Event) { d["args_mac"] = task.MACPrefix + "00" },
		"policy_version": func(_ map[string]any, ev *ledger.Event) { ev.PolicyVersion = "sha256:other" },
		"expiry":         func(_ map[string]any, ev *ledger.Event) { ev.Time = ev.Time.Add(task.DefaultApprovalTTL + time.Second) },
	} {
		if err := replay(consume(change)); !errors.Is(err, task.ErrIncoherent) {
			t.Errorf("a consumption for another %s replays: %v", name, err)
		}
	}
}

// TestReplayLegacyStepUp: a ledger written before args_mac, whose step-ups
// carry a plain args_digest and are bound to tool and digest only, still
// replays; such a step-up is neither listed nor decidable now.
func TestReplayLegacyStepUp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	cred := e.credential(e.openTask(alice, scope("internal", "dev"), nil).TaskID)
	c := stepUpCall("read", "erp://invoices/2026-Q2/9", `{"id": 9}`, "internal")
	e.approve(e.stepUp(cred, c))
	a, err := e.svc.Authorize(ctx, cred, c, task.Request{})
	if err != nil || !a.Allow {
		t.Fatalf("approved call: %+v, %v", a, err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}

	// Rewrite the events as the earlier version wrote them.
	st := task.NewState()
	for i, leaf := range e.leafList() {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if json.Unmarshal(ent.Event.Data, &d) == nil && d["args_mac"] != nil {
			delete(d, "args_mac")
			d["args_digest"] = "sha256:0f0f"
			if ent.Event.Type == ledger.TypeApprovalGranted {
				delete(d, "operation")
				delete(d, "resource")
				delete(d, "data_class")
			}
		}
		if ent.Event.Type == ledger.TypeActionCompleted {
			d["output_digest"] = "sha256:1e1e"
		}
		ent.Event.Data, _ = json.Marshal(d)
		if err := st.Apply(ent); err != nil {
			t.Fatalf("replaying legacy event %d (%s): %v", i, ent.Event.Type, err)
		}
	}

	// A legacy step-up still pending when the new version starts: neither
	// listed nor decidable, and the call asks again under a new approval.
	old := stepUpCall("read", "erp://invoices/2026-Q2/11", `{"id": 11}`, "internal")
	held := e.stepUp(cred, old)
	var req ledger.Event
	for i, leaf := range e.leafList() {
		ent, _ := ledger.ParseLeaf(uint64(i), leaf)
		if ent.Event.Type == ledger.TypeApprovalRequested {
			req = ent.Event
		}
	}
	var d map[string]any
	json.Unmarshal(req.Data, &d)
	legacyID := "apr_legacy"
	d["approval_id"] = legacyID
	delete(d, "args_mac")
	d["args_digest"] = "sha256:0f0f"
	req.Data, _ = json.Marshal(d)
	req.Prev = nil // the ledger links the event anew
	if _, err := e.led.AppendAll(ctx, []ledger.Event{req}); err != nil {
		t.Fatal(err)
	}
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatalf("restart on a ledger with a legacy step-up: %v", err)
	}
	for _, p := range e.svc.ListPendingApprovals(bob.ID) {
		if p.ApprovalID == legacyID {
			t.Errorf("legacy step-up listed: %+v", p)
		}
	}
	if _, err := e.svc.DecideApproval(ctx, bob, legacyID, api.Decide{Decision: "approve"}); code(err) != "approval_outdated" {
		t.Errorf("deciding a legacy step-up: %v", err)
	}
	if again := e.stepUp(cred, old); again != held {
		t.Errorf("the retry is held for %s, want its pending %s", again, held)
	}
}
