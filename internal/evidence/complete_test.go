package evidence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// delegationStory runs a task with everything a chain links: approvals,
// calls with results and a refusal, an event imported from another
// system, a child task with a call of its own, an erased body, and the
// end of both. It returns the parent task's ID.
func (e *env) delegationStory() string {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Reconcile Q3 invoices", Scope: scope("confidential", "prod"), TTL: "15m"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, api.Decide{Decision: "approve", Reason: "ticket 9"}); err != nil {
		e.t.Fatal(err)
	}
	cred := e.credential(out.TaskID)
	call := func(cred task.VerifiedCredential, n int) uint64 {
		a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read",
			Resource: "erp://invoices/2026-Q3/" + itoa(n), Arguments: json.RawMessage(`{"id":` + itoa(n) + `}`), DataClass: "internal"}, task.Request{Gateway: "api"})
		if err != nil || !a.Allow {
			e.t.Fatalf("authorize: %+v %v", a, err)
		}
		if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total":` + itoa(n) + `}`)}); err != nil {
			e.t.Fatal(err)
		}
		tr, err := e.svc.Trace(ctx, cred.TaskID)
		if err != nil {
			e.t.Fatal(err)
		}
		return tr.Events[len(tr.Events)-1].Index // the result
	}
	call(cred, 1)
	result := call(cred, 2)
	if a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "payroll.read", Operation: "read", Resource: "erp://payroll/1", DataClass: "internal"}, task.Request{Gateway: "api"}); err != nil || a.Allow {
		e.t.Fatalf("out of scope: %+v %v", a, err)
	}
	if _, err := e.led.Append(ctx, ledger.Event{Type: "import.siem.alert", TaskID: out.TaskID, Agent: agent,
		Data: json.RawMessage(`{"rule":"invoice reads","severity":"low"}`)}); err != nil {
		e.t.Fatal(err)
	}
	narrow := scope("internal", "prod")
	narrow.Tools = []string{"invoices.read"}
	child, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Read one invoice", Scope: narrow, TTL: "10m", Parent: &out.TaskID})
	if err != nil || child.State != api.StateActive {
		e.t.Fatalf("child: %+v %v", child, err)
	}
	childCred := e.credential(child.TaskID)
	call(childCred, 3)
	if _, err := e.led.Erase(ctx, ledger.BodyRef{Index: result, Name: "output"}, "customer request 12", "oidc:test#admin"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.Complete(ctx, alice, child.TaskID); err != nil {
		e.t.Fatal(err)
	}
	call(cred, 4)
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		e.t.Fatal(err)
	}
	return out.TaskID
}

type bundleEvent struct {
	index uint64
	typ   string
	task  string
}

func bundleEvents(t *testing.T, f map[string][]byte) []bundleEvent {
	t.Helper()
	var out []bundleEvent
	for _, l := range eventLines(f) {
		var el evidence.EventLine
		if err := json.Unmarshal([]byte(l), &el); err != nil {
			t.Fatal(err)
		}
		ent, err := ledger.ParseLeaf(el.Index, el.Event)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bundleEvent{el.Index, ent.Event.Type, ent.Event.TaskID})
	}
	return out
}

// dropEvent removes the event at index from a bundle with everything that
// is its alone — line, proof, payloads, erasure records — and rebuilds
// the manifest and the derived files to match.
func dropEvent(t *testing.T, files map[string][]byte, index uint64) []byte {
	t.Helper()
	f := make(map[string][]byte, len(files))
	for p, b := range files {
		f[p] = b
	}
	var kept []string
	for _, l := range eventLines(f) {
		var el evidence.EventLine
		json.Unmarshal([]byte(l), &el)
		if el.Index != index {
			kept = append(kept, l)
		}
	}
	setEventLines(f, kept)
	delete(f, fmt.Sprintf("proofs/%d.tlog-proof", index))
	for p := range f {
		if strings.HasPrefix(p, fmt.Sprintf("payloads/%d/", index)) {
			delete(f, p)
		}
	}
	setManifest(t, f, func(m *evidence.Manifest) {
		var erased []evidence.Erased
		for _, x := range m.Erased {
			if x.Index != index && x.ErasureIndex != index {
				erased = append(erased, x)
			}
		}
		m.Erased = erased
	})
	if err := evidence.Reseal(f); err != nil {
		t.Fatal(err)
	}
	return rezip(t, f, false)
}

// Every event of a real task's bundle, dropped in turn by someone who
// rebuilds the rest of the bundle to match, is caught, by its index where a
// later event names it; the newest of a task, which none names, by what
// ending the task writes.
func TestEveryDroppedEventIsCaught(t *testing.T) {
	e := newEnv(t, "prod")
	root := e.delegationStory()
	bundle := e.exportIndexed(root)
	r := verify(t, bundle, evidence.VerifyOptions{Key: e.vkey})
	if !r.OK() || r.Completeness == nil || r.Completeness.Status != evidence.StatusComplete || len(r.Completeness.Tasks) != 2 {
		t.Fatalf("the bundle as exported: %s\ncompleteness %+v", failures(r), r.Completeness)
	}
	end := map[string]uint64{}
	for _, tc := range r.Completeness.Tasks {
		if tc.Status != evidence.StatusComplete || tc.End == nil {
			t.Fatalf("task %s: %+v", tc.TaskID, tc)
		}
		end[tc.TaskID] = *tc.End
	}
	files := unzip(t, bundle)
	events := bundleEvents(t, files)
	newest := map[string]uint64{}
	types := map[string]bool{}
	for _, ev := range events {
		newest[ev.task] = max(newest[ev.task], ev.index)
		types[ev.typ] = true
	}
	for _, typ := range []string{ledger.TypeTaskRequested, ledger.TypeApprovalGranted, ledger.TypeCredentialIssued, ledger.TypeActionAuthorized,
		ledger.TypeActionDenied, ledger.TypeActionCompleted, ledger.TypeTaskDelegated, ledger.TypeBodyErased, "import.siem.alert", ledger.TypeTaskCompleted} {
		if !types[typ] {
			t.Errorf("the story's bundle has no %s event", typ)
		}
	}
	for _, ev := range events {
		t.Run(fmt.Sprintf("%d %s", ev.index, ev.typ), func(t *testing.T) {
			if ev.task == "" {
				// policy.loaded: context for the policy version, in no
				// task's chain (docs/evidence.md).
				if ev.typ != ledger.TypePolicyLoaded {
					t.Errorf("a %s event of no task", ev.typ)
				}
				return
			}
			dropped := dropEvent(t, files, ev.index)
			r := verify(t, dropped, evidence.VerifyOptions{Key: e.vkey})
			if ev.index == newest[ev.task] {
				// No event names a task's newest. Dropped after its end
				// (the revocation of its credential that ending it
				// writes), the credential left unrevoked shows it;
				// dropped at its end, the chain shows the task as not
				// ended, and a verifier that requires completeness
				// refuses it.
				tc := taskOf(r, ev.task)
				switch {
				case ev.index > end[ev.task]:
					if r.OK() || tc == nil || tc.Status != evidence.StatusIncomplete || !strings.Contains(failures(r), "the revocation of its credential") {
						t.Errorf("an event after the end of task %s dropped: %s %+v", ev.task, failures(r), tc)
					}
				case tc == nil || tc.Status == evidence.StatusComplete || tc.Newest >= ev.index:
					t.Errorf("the end of task %s dropped: %+v", ev.task, tc)
				default:
					strict := verify(t, dropped, evidence.VerifyOptions{Key: e.vkey, RequireComplete: true})
					if strict.OK() || !strings.Contains(failures(strict), "complete: task "+ev.task) {
						t.Errorf("required complete, the bundle passes: %s", failures(strict))
					}
				}
				return
			}
			if r.OK() || r.Completeness.Status != evidence.StatusIncomplete {
				t.Fatalf("dropped event %d not caught: ok=%v completeness %+v", ev.index, r.OK(), r.Completeness)
			}
			named := false
			for _, f := range r.Failures {
				if f.Check == "complete" && f.Index != nil && *f.Index == ev.index {
					named = true
				}
			}
			if !named || !contains(r.Completeness.Missing, ev.index) {
				t.Errorf("dropped event %d is not named missing: %s (missing %v)", ev.index, failures(r), r.Completeness.Missing)
			}
		})
	}
}

func taskOf(r *evidence.Report, task string) *evidence.TaskCompleteness {
	for i := range r.Completeness.Tasks {
		if r.Completeness.Tasks[i].TaskID == task {
			return &r.Completeness.Tasks[i]
		}
	}
	return nil
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
