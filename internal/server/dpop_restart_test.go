package server_test

import (
	"net/http"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential/credtest"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestDPoPReplayAfterRestart: on SQLite, the record of accepted DPoP
// proofs survives a restart, so a proof accepted before it is refused when
// replayed after it, within its window.
func TestDPoPReplayAfterRestart(t *testing.T) {
	const public = "https://writ.example.test"
	cfg := servertest.Dev(t.TempDir(), "dev")
	cfg.Credentials.PublicURL = public
	a := serve(t, cfg)
	a.token = devToken(t, cfg.DataDir, identity.RoleAdmin, identity.RoleAuditor)
	key, tok := dpopTaskToken(t, a, public)
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	proof := key.Proof(t, "POST", public+"/v1/authorize", tok.AccessToken)
	if ans := authorize(t, a, "DPoP "+tok.AccessToken, proof, in); ans.status != http.StatusOK {
		t.Fatalf("first use: %d %s", ans.status, ans.body)
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}

	b := serve(t, cfg)
	wantError(t, authorize(t, b, "DPoP "+tok.AccessToken, proof, in), http.StatusUnauthorized, "invalid_dpop_proof")
	if ans := authorize(t, b, "DPoP "+tok.AccessToken, key.Proof(t, "POST", public+"/v1/authorize", tok.AccessToken), in); ans.status != http.StatusOK {
		t.Fatalf("a fresh proof after the restart: %d %s", ans.status, ans.body)
	}
}

// dpopTaskToken opens a task for agentA on ts, whose public URL is public,
// and exchanges a token for it bound to a new DPoP key.
func dpopTaskToken(t *testing.T, ts *testServer, public string) (*credtest.DPoPKey, api.TokenResponse) {
	t.Helper()
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	return exchangeBound(t, ts, opened.TaskID, public)
}

// exchangeBound exchanges agentA's SVID for a token of task taskID bound to
// a new DPoP key, proving the key to ts's token endpoint at the public URL
// public.
func exchangeBound(t *testing.T, ts *testServer, taskID, public string) (*credtest.DPoPKey, api.TokenResponse) {
	t.Helper()
	key := credtest.NewDPoPKey(t)
	return key, tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), taskID), key.Proof(t, "POST", public+"/oauth2/token", "")))
}

// wantBoundAllowed checks that a DPoP-bound token of task taskID makes the
// call in on ts.
func wantBoundAllowed(t *testing.T, ts *testServer, taskID string, in api.Authorize) {
	t.Helper()
	key, tok := exchangeBound(t, ts, taskID, ts.url)
	if a := authorize(t, ts, "DPoP "+tok.AccessToken, key.Proof(t, "POST", ts.url+"/v1/authorize", tok.AccessToken), in); a.status != http.StatusOK {
		t.Fatalf("bound token: %d %s", a.status, a.body)
	}
}
