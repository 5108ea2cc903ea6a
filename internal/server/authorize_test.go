package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/credential/credtest"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/task"
)

// authorize posts a decision request with the given Authorization value and,
// when proof is not empty, a DPoP header.
func authorize(t testing.TB, ts *testServer, authz, proof string, req api.Authorize) answer {
	t.Helper()
	return postWithToken(t, ts, "/v1/authorize", authz, proof, mustJSONTB(t, req))
}

func postWithToken(t testing.TB, ts *testServer, path, authz, proof string, body []byte) answer {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	return send(t, r)
}

func mustJSONTB(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ledgerEvent is the part of a trace event the tests look at.
type ledgerEvent struct {
	Type string `json:"type"`
	JTI  string `json:"jti"`
	Data struct {
		ActionID string `json:"action_id"`
		Reason   string `json:"reason"`
	} `json:"data"`
}

// events returns the task's ledger events, through the trace API.
func events(t *testing.T, ts *testServer, auditor, taskID string) []ledgerEvent {
	t.Helper()
	tr := decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+taskID+"/trace", auditor, nil))
	out := make([]ledgerEvent, len(tr.Events))
	for i, ev := range tr.Events {
		if err := json.Unmarshal(ev.Event, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func hasEvent(evs []ledgerEvent, typ, actionID string) bool {
	for _, e := range evs {
		if e.Type == typ && (actionID == "" || e.Data.ActionID == actionID) {
			return true
		}
	}
	return false
}

// TestDecisionFlow walks the evidence chain end to end: a task, its token,
// allowed and denied calls, a step-up, a result, and revocation at the end.
func TestDecisionFlow(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("prod"), nil)
	if d := do(t, "POST", ts.url+"/v1/tasks/"+opened.TaskID+"/approvals", tok["bob"], mustJSON(t, api.Decide{Decision: "approve"})); d.status != http.StatusOK {
		t.Fatalf("approve: %d %s", d.status, d.body)
	}
	task := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID, tok["auditor"], nil))
	before := time.Now()
	got := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), ""))

	// The token says who, for whom, which task, and for how long.
	c := claims(t, got.AccessToken)
	act, _ := c["act"].(map[string]any)
	want := map[string]any{"sub": task.Requester, "act": map[string]any{"sub": agentA}, "txn": opened.TaskID,
		"scope": "task:" + opened.TaskID, "aud": "writ", "iss": "writ"}
	for k, v := range want {
		if diff := cmp.Diff(v, c[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}
	if act["sub"] != agentA || c["jti"] == "" || c["cnf"] != nil {
		t.Errorf("claims %v", c)
	}
	exp := time.Unix(int64(c["exp"].(float64)), 0)
	iat := time.Unix(int64(c["iat"].(float64)), 0)
	if exp.Sub(iat) > 5*time.Minute || exp.After(task.ExpiresAt) || exp.Before(before) {
		t.Errorf("exp %s, iat %s: want at most the prod cap of 5m and the task's expiry %s", exp, iat, task.ExpiresAt)
	}
	bearer := "Bearer " + got.AccessToken

	// In scope: allowed, and action.authorized is in the ledger before the answer.
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: json.RawMessage(`{"id": 17}`), DataClass: "confidential"}
	a := authorize(t, ts, bearer, "", in)
	if a.status != http.StatusOK {
		t.Fatalf("in-scope authorize: %d %s", a.status, a.body)
	}
	allowed := decodeAs[api.Authorized](t, a)
	if !allowed.Allow || allowed.ActionID == "" || allowed.DecisionID == "" {
		t.Fatalf("allowed %+v", allowed)
	}
	if !hasEvent(events(t, ts, tok["auditor"], opened.TaskID), "action.authorized", allowed.ActionID) {
		t.Fatalf("action.authorized %s is not in the ledger", allowed.ActionID)
	}

	// Out of scope: denied with a decision and reasons.
	a = authorize(t, ts, bearer, "", api.Authorize{Tool: "mail.send", Operation: "send", Resource: "mailto:x@example.org"})
	denied := decodeAs[api.Authorized](t, a)
	if a.status != http.StatusForbidden || denied.Allow || denied.DecisionID == "" || len(denied.Reasons) == 0 || denied.ActionID != "" {
		t.Fatalf("out-of-scope authorize: %d %s", a.status, a.body)
	}

	// Step-up: a resource outside the scope needs an approval, which lets
	// the same call through exactly once.
	step := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q4/1", Arguments: json.RawMessage(`{"id": 1}`)}
	a = authorize(t, ts, bearer, "", step)
	need := decodeAs[api.Authorized](t, a)
	if a.status != http.StatusForbidden || need.Allow || !need.ApprovalRequired || need.ApprovalID == "" || need.DecisionID == "" {
		t.Fatalf("step-up: %d %s", a.status, a.body)
	}
	if d := do(t, "POST", ts.url+"/v1/approvals/"+need.ApprovalID, tok["bob"], mustJSON(t, api.Decide{Decision: "approve"})); d.status != http.StatusOK {
		t.Fatalf("approve step-up: %d %s", d.status, d.body)
	}
	changed := step
	changed.Arguments = json.RawMessage(`{"id": 2}`)
	if a := authorize(t, ts, bearer, "", changed); a.status != http.StatusForbidden || !decodeAs[api.Authorized](t, a).ApprovalRequired {
		t.Fatalf("changed argument after step-up: %d %s", a.status, a.body)
	}
	a = authorize(t, ts, bearer, "", step)
	if a.status != http.StatusOK || !decodeAs[api.Authorized](t, a).Allow {
		t.Fatalf("approved step-up: %d %s", a.status, a.body)
	}
	if a := authorize(t, ts, bearer, "", step); a.status != http.StatusForbidden || !decodeAs[api.Authorized](t, a).ApprovalRequired {
		t.Fatalf("step-up used twice: %d %s", a.status, a.body)
	}

	// The result is recorded once.
	res := mustJSON(t, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total": 42}`)})
	a = postWithToken(t, ts, "/v1/actions/"+allowed.ActionID+"/result", bearer, "", res)
	if a.status != http.StatusOK || decodeAs[api.ResultRecorded](t, a).ActionID != allowed.ActionID {
		t.Fatalf("result: %d %s", a.status, a.body)
	}
	wantError(t, postWithToken(t, ts, "/v1/actions/"+allowed.ActionID+"/result", bearer, "", res), http.StatusConflict, "already_recorded")
	wantError(t, postWithToken(t, ts, "/v1/actions/act_nope/result", bearer, "", res), http.StatusNotFound, "not_found")
	if !hasEvent(events(t, ts, tok["auditor"], opened.TaskID), "action.completed", allowed.ActionID) {
		t.Error("action.completed is not in the ledger")
	}

	// Malformed requests.
	wantError(t, postWithToken(t, ts, "/v1/authorize", bearer, "", []byte(`{"tool": 5}`)), http.StatusBadRequest, "invalid_request")
	wantError(t, postWithToken(t, ts, "/v1/authorize", bearer, "", []byte(`{"tool": "invoices.read", "arguments": [1]}`)), http.StatusBadRequest, "invalid_request")
	big := []byte(`{"tool": "invoices.read", "arguments": {"x": "` + strings.Repeat("a", 1<<20) + `"}}`)
	wantError(t, postWithToken(t, ts, "/v1/authorize", bearer, "", big), http.StatusRequestEntityTooLarge, "too_large")

	// Completing the task revokes the token: the next call, and the replay
	// of an old one, are refused; no new token is issued.
	if a := do(t, "POST", ts.url+"/v1/tasks/"+opened.TaskID+"/complete", tok["alice"], nil); a.status != http.StatusOK {
		t.Fatalf("complete: %d %s", a.status, a.body)
	}
	a = authorize(t, ts, bearer, "", in)
	wantError(t, a, http.StatusUnauthorized, "invalid_token")
	if ch := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="writ", error="invalid_token"`) || !strings.Contains(ch, "revoked") {
		t.Errorf("WWW-Authenticate = %q", ch)
	}
	wantError(t, postWithToken(t, ts, "/v1/actions/"+allowed.ActionID+"/result", bearer, "", res), http.StatusUnauthorized, "invalid_token")
	wantOAuthError(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), ""), 400, "invalid_grant")

	evs := events(t, ts, tok["auditor"], opened.TaskID)
	revoked, rejected := false, false
	for _, e := range evs {
		revoked = revoked || (e.Type == "credential.revoked" && e.JTI == c["jti"])
		rejected = rejected || (e.Type == "auth.rejected" && e.JTI == c["jti"])
	}
	if !revoked || !rejected {
		t.Errorf("ledger lacks the revocation (%v) or the refused call (%v)", revoked, rejected)
	}
	tr := do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID+"/trace", tok["auditor"], nil)
	if bytes.Contains(tr.body, []byte(got.AccessToken)) || bytes.Contains(tr.body, []byte(strings.Split(got.AccessToken, ".")[2])) {
		t.Error("the ledger holds the access token")
	}
}

func TestAuthorizeTokenRefusals(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	good := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	parts := strings.Split(good, ".")
	tests := []struct {
		name   string
		authz  string
		status int
		code   string
	}{
		{"no token", "", 401, "unauthorized"},
		{"wrong scheme", "Basic " + good, 400, "invalid_request"},
		{"a human's identity token", "Bearer " + tok["alice"], 401, "invalid_token"},
		{"an agent's SVID", "Bearer " + svid(t, ts, agentA), 401, "invalid_token"},
		{"tampered signature", "Bearer " + parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), 401, "invalid_token"},
		{"bearer token with the DPoP scheme", "DPoP " + good, 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authorize(t, ts, tt.authz, "", in)
			wantError(t, a, tt.status, tt.code)
			if tt.status == 401 && !strings.Contains(a.header.Get("WWW-Authenticate"), `realm="writ"`) {
				t.Errorf("WWW-Authenticate = %q", a.header.Get("WWW-Authenticate"))
			}
		})
	}
	if a := authorize(t, ts, "Bearer "+good, "", in); a.status != http.StatusOK {
		t.Fatalf("the good token after the refusals: %d %s", a.status, a.body)
	}
}

func TestDPoPBoundToken(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	key, got := exchangeBound(t, ts, opened.TaskID, ts.url)
	if got.TokenType != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", got.TokenType)
	}
	cnf, _ := claims(t, got.AccessToken)["cnf"].(map[string]any)
	if cnf["jkt"] != key.JKT(t) {
		t.Fatalf("cnf %v, want jkt %s", cnf, key.JKT(t))
	}
	uri := ts.url + "/v1/authorize"
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}

	// Without a proof, as a bearer token or with the DPoP scheme: refused.
	wantError(t, authorize(t, ts, "Bearer "+got.AccessToken, "", in), 401, "invalid_token")
	a := authorize(t, ts, "DPoP "+got.AccessToken, "", in)
	wantError(t, a, 401, "invalid_dpop_proof")
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "DPoP ") {
		t.Errorf("WWW-Authenticate = %q, want the DPoP scheme", a.header.Get("WWW-Authenticate"))
	}
	// A proof for another token (ath), another URI, or by another key: refused.
	wantError(t, authorize(t, ts, "DPoP "+got.AccessToken, key.Proof(t, "POST", uri, "another-token"), in), 401, "invalid_dpop_proof")
	wantError(t, authorize(t, ts, "DPoP "+got.AccessToken, key.Proof(t, "POST", ts.url+"/v1/other", got.AccessToken), in), 401, "invalid_dpop_proof")
	wantError(t, authorize(t, ts, "DPoP "+got.AccessToken, credtest.NewDPoPKey(t).Proof(t, "POST", uri, got.AccessToken), in), 401, "invalid_token")

	// A valid proof is accepted once; its replay is refused.
	proof := key.Proof(t, "POST", uri, got.AccessToken)
	if a := authorize(t, ts, "DPoP "+got.AccessToken, proof, in); a.status != http.StatusOK {
		t.Fatalf("valid proof: %d %s", a.status, a.body)
	}
	wantError(t, authorize(t, ts, "DPoP "+got.AccessToken, proof, in), 401, "invalid_dpop_proof")
}

func TestRequireBindingRefusesBearer(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	cfg.Credentials.RequireBinding = []string{"dev"}
	ts := serve(t, cfg)
	alice := devTokenFor(t, ts, "alice", "requester")
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	bearer := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	wantError(t, authorize(t, ts, "Bearer "+bearer, "", in), 401, "invalid_token")
	wantBoundAllowed(t, ts, opened.TaskID, in)
}

// TestLedgerUnavailableNeverAllows breaks the store under a running server:
// every authorization answers 503, never allow, and no token is issued.
func TestLedgerUnavailableNeverAllows(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	bearer := "Bearer " + tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	if a := authorize(t, ts, bearer, "", in); a.status != http.StatusOK {
		t.Fatalf("before: %d %s", a.status, a.body)
	}

	if err := server.BreakStore(ts.srv); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a := authorize(t, ts, bearer, "", in)
		wantError(t, a, http.StatusServiceUnavailable, "ledger_unavailable")
		if bytes.Contains(a.body, []byte(`"allow":true`)) {
			t.Fatal("allowed with the ledger down")
		}
	}
	a := exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")
	if a.status != http.StatusServiceUnavailable || bytes.Contains(a.body, []byte("access_token")) {
		t.Fatalf("exchange with the ledger down: %d %s", a.status, a.body)
	}
	ts.stop() // fails, and is not checked: with the store gone, so does the final checkpoint
}

// TestProjectionTamperCaught edits the tasks table behind writ's back (a
// revoked task set active again): server start refuses, the read-only check
// names the row, and --repair-projections restores it from the ledger.
func TestProjectionTamperCaught(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	token := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	if a := do(t, "POST", ts.url+"/v1/tasks/"+opened.TaskID+"/revoke", tok["alice"], []byte(`{"reason": "done early"}`)); a.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", filepath.Join(ts.dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE tasks SET state = 'active', ended_at = '' WHERE task_id = ?`, opened.TaskID); err != nil {
		t.Fatal(err)
	}
	db.Close()

	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.Dev = ts.dir, "127.0.0.1:0", true
	_, err = server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	var pm *task.ProjectionMismatchError
	if !errors.As(err, &pm) || !strings.Contains(err.Error(), opened.TaskID) {
		t.Fatalf("server.New on a tampered store: %v, want a projection mismatch naming the task", err)
	}

	d, err := datadir.Open(context.Background(), ts.dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := task.CheckProjections(context.Background(), d.Store, d.Store.DB())
	d.Close()
	if err != nil || len(diffs) == 0 {
		t.Fatalf("CheckProjections = %q, %v; want the tampered row", diffs, err)
	}
	if want := `tasks row ` + opened.TaskID + `: state is "active" but the ledger implies "revoked"`; !slices.Contains(diffs, want) {
		t.Errorf("CheckProjections = %q, want %q among them", diffs, want)
	}

	cfg.RepairProjections = true
	ts2 := serve(t, cfg)
	auditor := devTokenFor(t, ts2, "audrey", "auditor")
	if got := decodeAs[api.Task](t, do(t, "GET", ts2.url+"/v1/tasks/"+opened.TaskID, auditor, nil)); got.State != api.StateRevoked {
		t.Errorf("after repair the task is %s, want revoked", got.State)
	}
	// The revoked token stays refused after the restart.
	wantError(t, authorize(t, ts2, "Bearer "+token, "", api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}),
		http.StatusUnauthorized, "invalid_token")
	if err := ts2.stop(); err != nil {
		t.Fatal(err)
	}
	d, err = datadir.Open(context.Background(), ts.dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if diffs, err := task.CheckProjections(context.Background(), d.Store, d.Store.DB()); err != nil || len(diffs) != 0 {
		t.Errorf("after repair CheckProjections = %q, %v", diffs, err)
	}
}

// TestPolicyRequiresBinding: a policy, not only the configuration, can demand
// sender-constrained tokens, at the exchange point (no unbound token is
// issued) or at the action point (a call with an unbound token is denied,
// and recorded as refused by writ although the policy permitted it).
func TestPolicyRequiresBinding(t *testing.T) {
	bundle := func(t *testing.T, points string) string {
		dir := filepath.Join(t.TempDir(), "policy")
		src, err := policy.DefaultPack(policy.EngineRego)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range src.Files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, f.Path)), 0o755)
			os.WriteFile(filepath.Join(dir, f.Path), f.Data, 0o644)
		}
		os.WriteFile(filepath.Join(dir, "binding.rego"), []byte(`package writ

permit contains {"id": "prod-bound", "obligations": {"require_binding": true}} if {
	input.point in {`+points+`}
	input.request.environment == "prod"
}
`), 0o644)
		return dir
	}
	start := func(t *testing.T, points string) (*testServer, api.TaskOpened) {
		cfg := servertest.Dev(t.TempDir(), "prod")
		cfg.Policy.Dir = bundle(t, points)
		ts := serve(t, cfg)
		sc := api.Scope{Tools: []string{"kb.*"}, Resources: []string{"kb://public/*"}, Operations: []string{"read"}, DataClass: "internal", Environments: []string{"prod"}}
		opened := openTask(t, ts, devTokenFor(t, ts, "alice", "requester"), agentA, sc, nil)
		if opened.State != api.StateActive {
			t.Fatalf("task %+v", opened)
		}
		return ts, opened
	}
	in := api.Authorize{Tool: "kb.search", Operation: "read", Resource: "kb://public/faq"}

	t.Run("exchange", func(t *testing.T) {
		ts, opened := start(t, `"exchange"`)
		a := exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")
		if d := wantOAuthError(t, a, http.StatusBadRequest, "invalid_request"); !strings.Contains(d, "sender-constrained") {
			t.Errorf("unbound exchange refused with %q", d)
		}
		wantBoundAllowed(t, ts, opened.TaskID, in)
	})
	t.Run("action", func(t *testing.T) {
		ts, opened := start(t, `"action"`)
		bearer := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
		a := authorize(t, ts, "Bearer "+bearer, "", in)
		var out api.Authorized
		json.Unmarshal(a.body, &out)
		if a.status != http.StatusForbidden || out.Allow || out.DecisionID == "" || !slices.Contains(out.Reasons, task.ReasonBindingRequired) {
			t.Fatalf("unbound call: %d %s", a.status, a.body)
		}
		tr := decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID+"/trace", devTokenFor(t, ts, "audrey", "auditor"), nil))
		found := false
		for _, e := range tr.Events {
			ev := string(e.Event)
			if strings.Contains(ev, `"type":"action.denied"`) && strings.Contains(ev, `"refused":"binding_required"`) && strings.Contains(ev, `"effect":"allow"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no action.denied recording the binding refusal among %d events", len(tr.Events))
		}
		wantBoundAllowed(t, ts, opened.TaskID, in)
	})
}

// TestAuthorizeInexactNumber: the decision API refuses, with 400 naming the
// path, arguments holding a number that canonical form would record as
// another value.
func TestAuthorizeInexactNumber(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	good := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	body := `{"tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/17","arguments":{"amount":12345678901234567891}}`
	a := postWithToken(t, ts, "/v1/authorize", "Bearer "+good, "", []byte(body))
	wantError(t, a, http.StatusBadRequest, "invalid_request")
	if !strings.Contains(string(a.body), "arguments.amount") {
		t.Errorf("refusal %s does not name arguments.amount", a.body)
	}
}
