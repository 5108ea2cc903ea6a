package server_test

import (
	"net/http"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/retention"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// openInternal opens a low-risk task (active at once in dev) and returns
// its ID and the index of its task.requested.
func openInternal(t *testing.T, ts *testServer, token string) (string, uint64) {
	t.Helper()
	id := openKB(t, ts, token, "dev").TaskID
	got := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+id, token, nil))
	return id, got.LedgerIndex
}

// TestLegalHoldAPI places and lifts a hold over HTTP, and erasure by
// request respects it unless forced; the reports answer auditors.
func TestLegalHoldAPI(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	id, requested := openInternal(t, ts, tok["alice"])
	holdURL := ts.url + "/v1/tasks/" + id + "/hold"
	reason := mustJSON(t, api.HoldRequest{Reason: "litigation 2026-14"})

	if a := do(t, "POST", holdURL, tok["alice"], reason); a.status != http.StatusForbidden {
		t.Errorf("a requester holds: %d %s", a.status, a.body)
	}
	wantError(t, do(t, "POST", holdURL, tok["auditor"], []byte(`{}`)), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "POST", holdURL, tok["auditor"], []byte(`{"reason":"x","until":"never"}`)), http.StatusBadRequest, "invalid_request")
	a := do(t, "POST", holdURL, tok["auditor"], reason)
	held := decodeAs[api.Task](t, a)
	if a.status != http.StatusOK || held.Hold == nil || held.Hold.TaskID != id || held.Hold.Reason != "litigation 2026-14" {
		t.Fatalf("hold: %d %s", a.status, a.body)
	}
	wantError(t, do(t, "POST", holdURL, tok["admin"], reason), http.StatusConflict, "task_held")

	erase := func(force bool) answer {
		return do(t, "POST", ts.url+"/v1/ledger/erasures", tok["admin"],
			mustJSON(t, api.Erase{Index: requested, Name: "intent", Reason: "request 9", Force: force}))
	}
	wantError(t, erase(false), http.StatusConflict, "legal_hold")

	a = do(t, "GET", ts.url+"/v1/reports/retention", tok["auditor"], nil)
	plan := decodeAs[retention.Plan](t, a)
	if a.status != http.StatusOK || len(plan.Holds) != 1 || plan.Holds[0].TaskID != id || len(plan.Rules) != 0 {
		t.Errorf("retention report: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", ts.url+"/v1/reports/retention", tok["alice"], nil); a.status != http.StatusForbidden {
		t.Errorf("a requester reads the retention report: %d", a.status)
	}

	if a := erase(true); a.status != http.StatusCreated {
		t.Fatalf("a forced erasure: %d %s", a.status, a.body)
	}
	if v := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+id, tok["auditor"], nil)); v.Intent != "" {
		t.Errorf("the erased intent is shown: %q", v.Intent)
	}
	wantError(t, erase(true), http.StatusNotFound, "not_found")

	a = do(t, "DELETE", holdURL, tok["auditor"], mustJSON(t, api.HoldRequest{Reason: "case closed"}))
	if v := decodeAs[api.Task](t, a); a.status != http.StatusOK || v.Hold != nil {
		t.Fatalf("release: %d %s", a.status, a.body)
	}
	wantError(t, do(t, "DELETE", holdURL, tok["auditor"], mustJSON(t, api.HoldRequest{Reason: "again"})), http.StatusConflict, "task_not_held")

	a = do(t, "GET", ts.url+"/v1/reports/compliance?framework=nist-csf", tok["auditor"], nil)
	rep := decodeAs[evidence.ComplianceReport](t, a)
	if a.status != http.StatusOK || len(rep.Frameworks) != 1 || rep.Frameworks[0] != "NIST CSF 2.0" || rep.Events.Count == 0 ||
		!rep.Ledger.CheckpointVerified {
		t.Errorf("compliance report: %d %.300s", a.status, a.body)
	}
	var rsan evidence.ControlFigure
	for _, c := range rep.Controls {
		if c.ID == "RS.AN-06" {
			rsan = c
		}
	}
	if rsan.Records.Count != 3 {
		t.Errorf("RS.AN-06 counts the hold, the erasure and the release: %+v", rsan)
	}
	wantError(t, do(t, "GET", ts.url+"/v1/reports/compliance?framework=iso-27001", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	wantError(t, do(t, "GET", ts.url+"/v1/reports/compliance?from=yesterday", tok["auditor"], nil), http.StatusBadRequest, "invalid_request")
	if a := do(t, "GET", ts.url+"/v1/reports/compliance", tok["alice"], nil); a.status != http.StatusForbidden {
		t.Errorf("a requester reads the compliance report: %d", a.status)
	}
}

// TestLegalHoldAcrossReplicas: a hold placed on one replica keeps the
// other from erasing the task's bodies, as if it had been placed there.
func TestLegalHoldAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := startReplicas(t, dsn, nil)
	alice := devTokenFor(t, a, "alice", identity.RoleRequester)
	id, requested := openInternal(t, a, alice)
	if ans := do(t, "POST", a.url+"/v1/tasks/"+id+"/hold", a.token, mustJSON(t, api.HoldRequest{Reason: "litigation"})); ans.status != http.StatusOK {
		t.Fatalf("hold on A: %d %s", ans.status, ans.body)
	}
	ans := do(t, "POST", b.url+"/v1/ledger/erasures", b.token, mustJSON(t, api.Erase{Index: requested, Name: "intent", Reason: "request 1"}))
	wantError(t, ans, http.StatusConflict, "legal_hold")
	verifyPostgres(t, dsn)
}
