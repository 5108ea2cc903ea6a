package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/task"
)

// TestAttacksLeaveAVerifiableLedger runs the attacks of the security tests
// against one server, each refused, and then checks that what the server
// recorded of them is a ledger writ ledger verify accepts whole: every
// proof, commitment and signature, the task state replayed with no event
// skipped, and the projections in agreement.
func TestAttacksLeaveAVerifiableLedger(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	ts.token = devToken(t, ts.dir, identity.RoleAdmin, identity.RoleAuditor)
	alice := tok["alice"]
	carol := devTokenFor(t, ts, "carol", identity.RoleRequester)
	bob := devTokenFor(t, ts, "bob", identity.RoleApprover)
	refused := func(what string, a answer, want ...int) {
		t.Helper()
		for _, w := range want {
			if a.status == w {
				return
			}
		}
		t.Errorf("%s: %d %s, want one of %v", what, a.status, a.body, want)
	}

	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	access := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	bearer := "Bearer " + access

	// Forged and anonymous credentials.
	for range 5 {
		refused("forged token", authorize(t, ts, "Bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA", "", api.Authorize{Tool: "x"}), http.StatusUnauthorized)
		refused("no credential", do(t, "GET", ts.url+"/v1/tasks", "", nil), http.StatusUnauthorized)
	}
	// Lenient JSON, unknown fields, inexact numbers, hidden characters.
	for name, body := range map[string]string{
		"case variant":   `{"TOOL":"invoices.read","operation":"read"}`,
		"duplicate key":  `{"tool":"invoices.read","tool":"payroll.read"}`,
		"unknown field":  `{"tool":"invoices.read","args":{"id":1}}`,
		"inexact number": `{"tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1","arguments":{"n":12345678901234567891}}`,
		"bidi override":  `{"tool":"invoices.read\u202e","operation":"read"}`,
	} {
		refused(name, do(t, "POST", ts.url+"/v1/authorize", access, []byte(body)), http.StatusBadRequest)
	}
	// Resources that read one way to writ and another to a tool.
	for _, res := range []string{"erp://invoices/2026-Q3/../../payroll/x", "erp://invoices/2026-Q3/%2e%2e/x", "erp://invoices/2026-Q3/a%2Fb"} {
		refused(res, authorize(t, ts, bearer, "", api.Authorize{Tool: "invoices.read", Operation: "read", Resource: res}), http.StatusBadRequest)
	}
	// A step-up approved for one call, tried on another resource.
	step := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q2/9", Arguments: json.RawMessage(`{"id": 9}`)}
	need := decodeAs[api.Authorized](t, authorize(t, ts, bearer, "", step))
	if !need.ApprovalRequired {
		t.Fatalf("no step-up asked: %+v", need)
	}
	refused("approving", do(t, "POST", ts.url+"/v1/approvals/"+need.ApprovalID, bob, mustJSON(t, api.Decide{Decision: "approve"})), http.StatusOK)
	payroll := step
	payroll.Resource = "erp://payroll/executive-salaries"
	if got := decodeAs[api.Authorized](t, authorize(t, ts, bearer, "", payroll)); got.Allow || got.ApprovalID == need.ApprovalID {
		t.Errorf("the approval covered another resource: %+v", got)
	}
	// Another requester's task, and a child under it.
	refused("another's task", do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID, carol, nil), http.StatusNotFound)
	child := api.OpenTask{Agent: agentA, Intent: "widen", TTL: "5m", Parent: &opened.TaskID, Scope: invoiceScope("dev")}
	refused("child under another's task", do(t, "POST", ts.url+"/v1/tasks", carol, mustJSON(t, child)), http.StatusBadRequest, http.StatusNotFound)
	// writ's own event types from outside.
	for _, typ := range []string{"task.completed", "approval.granted", "credential.revoked"} {
		ev := `{"type":"` + typ + `","task_id":"` + opened.TaskID + `","data":{}}`
		refused(typ, do(t, "POST", ts.url+"/v1/ledger/events", ts.token, []byte(ev)), http.StatusBadRequest)
	}

	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, ts.dir)
	d, err := datadir.Open(context.Background(), ts.dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	chk, err := task.CheckLedger(context.Background(), d.Store, d.Store.DB())
	if err != nil {
		t.Fatal(err)
	}
	if chk.SkippedCount != 0 || len(chk.Projections) != 0 {
		t.Errorf("after the attacks: %d events the state machine skips (%+v), projections %s", chk.SkippedCount, chk.Skipped, strings.Join(chk.Projections, "; "))
	}
	t.Logf("%d events verified after the attacks", rep.Size)
}
