package evidence_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// TestBundleCannotConfirmRedactedValue: a bundle, and the query index
// beside the ledger, hold nothing that confirms a redacted password by
// hashing candidate argument objects: no plain digest of the arguments in
// any file (events.jsonl, ocsf.jsonl, report.html, payloads, proofs) nor
// in any row of the index.
func TestBundleCannotConfirmRedactedValue(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "check a login", Scope: scope("internal", "prod"), TTL: "15m"})
	if err != nil {
		t.Fatal(err)
	}
	cred := e.credential(out.TaskID)
	args := `{"user": "alice", "password": "hunter2"}`
	for _, res := range []string{"erp://invoices/2026-Q3/17", "erp://invoices/2026-Q2/9"} {
		a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res,
			Arguments: json.RawMessage(args), DataClass: "internal"}, task.Request{Gateway: "api"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ApprovalRequired {
			if _, err := e.svc.DecideApproval(ctx, bob, a.ApprovalID, api.Decide{Decision: "approve"}); err != nil {
				t.Fatal(err)
			}
			if a, err = e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res,
				Arguments: json.RawMessage(args), DataClass: "internal"}, task.Request{Gateway: "api"}); err != nil || !a.Allow {
				t.Fatalf("approved call: %+v %v", a, err)
			}
		}
		if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"ok":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		t.Fatal(err)
	}

	// The candidates are the unredacted arguments. (The output is disclosed
	// as it is, so the manifest's digest of its payload file is no leak.)
	guesses := testkit.PlainDigests(args, `{"user":"alice","password":"hunter2"}`, `{"password":"hunter2","user":"alice"}`, `{"user":"alice","password":"hunter1"}`)
	bundle := e.exportIndexed(out.TaskID)
	testkit.NoneIn(t, "bundle file", guesses, unzip(t, bundle))
	if r := verify(t, bundle, evidence.VerifyOptions{}); !r.OK() {
		t.Errorf("the bundle does not verify: %+v", r)
	}
	// The index has caught up (exportIndexed used it): scan its rows.
	testkit.NoneIn(t, "the index's", guesses, testkit.DumpTables(t, e.store.DB()))
}
