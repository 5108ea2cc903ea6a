package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/writhq/writ/api"
)

// TestStepUpStatus: the agent asked to wait for a step-up reads what became
// of it with its task token (pending, granted, used, denied with the
// approver's reason), and no other task's token, nor a human's, sees it.
func TestStepUpStatus(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	sc := invoiceScope("dev")
	sc.DataClass = "internal"
	opened := openTask(t, ts, tok["alice"], agentA, sc, nil)
	bearer := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	other := openTask(t, ts, tok["alice"], agentA, sc, nil)
	otherBearer := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), other.TaskID), "")).AccessToken

	status := func(token, id string) answer {
		return do(t, "GET", ts.url+"/v1/approvals/"+id+"/status", token, nil)
	}
	stepUp := func(resource string) api.Authorized {
		a := authorize(t, ts, "Bearer "+bearer, "", api.Authorize{Tool: "invoices.read", Operation: "read",
			Resource: resource, Arguments: json.RawMessage(`{"id": 1}`)})
		got := decodeAs[api.Authorized](t, a)
		if a.status != http.StatusForbidden || !got.ApprovalRequired || got.ApprovalID == "" {
			t.Fatalf("step-up: %d %s", a.status, a.body)
		}
		return got
	}
	wantStatus := func(id, want, reason string) {
		t.Helper()
		a := status(bearer, id)
		got := decodeAs[api.StepUp](t, a)
		if a.status != http.StatusOK || got.Status != want || got.Reason != reason || got.ApprovalID != id ||
			got.TaskID != opened.TaskID || got.Tool != "invoices.read" || got.ApprovalsRequired != 1 || got.ExpiresAt.IsZero() {
			t.Fatalf("status of %s: %d %s, want %s (reason %q)", id, a.status, a.body, want, reason)
		}
	}
	decide := func(id, decision, reason string) {
		t.Helper()
		if d := do(t, "POST", ts.url+"/v1/approvals/"+id, tok["bob"], mustJSON(t, api.Decide{Decision: decision, Reason: reason})); d.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", decision, id, d.status, d.body)
		}
	}

	granted := stepUp("erp://invoices/2026-Q4/1")
	wantStatus(granted.ApprovalID, "pending", "")
	decide(granted.ApprovalID, "approve", "once")
	wantStatus(granted.ApprovalID, "granted", "")
	if a := authorize(t, ts, "Bearer "+bearer, "", api.Authorize{Tool: "invoices.read", Operation: "read",
		Resource: "erp://invoices/2026-Q4/1", Arguments: json.RawMessage(`{"id": 1}`)}); a.status != http.StatusOK {
		t.Fatalf("approved retry: %d %s", a.status, a.body)
	}
	wantStatus(granted.ApprovalID, "used", "")

	denied := stepUp("erp://invoices/2026-Q4/2")
	decide(denied.ApprovalID, "deny", "not this quarter")
	wantStatus(denied.ApprovalID, "denied", "not this quarter")

	// Another task's token, a human's token, no token, an unknown ID.
	wantError(t, status(otherBearer, denied.ApprovalID), http.StatusNotFound, "not_found")
	wantError(t, status(tok["bob"], denied.ApprovalID), http.StatusUnauthorized, "invalid_token")
	wantError(t, status("", denied.ApprovalID), http.StatusUnauthorized, "unauthorized")
	wantError(t, status(bearer, "apr_nope"), http.StatusNotFound, "not_found")

	// Once the task has ended its token is refused here too.
	if a := do(t, "POST", ts.url+"/v1/tasks/"+opened.TaskID+"/complete", tok["alice"], nil); a.status != http.StatusOK {
		t.Fatalf("complete: %d %s", a.status, a.body)
	}
	wantError(t, status(bearer, denied.ApprovalID), http.StatusUnauthorized, "invalid_token")
}
