package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/identity"
)

// Agents of the dev trust domain.
const (
	agentA = "spiffe://writ.dev/agent/a"
	agentB = "spiffe://writ.dev/agent/b"
)

// svid mints a dev JWT-SVID for agent, for writ's audience.
func svid(t testing.TB, ts *testServer, agent string) string {
	t.Helper()
	s, err := identity.DevSVID(ts.dir, agent, []string{"writ"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange posts a token-exchange form, with a DPoP proof when proof is not
// empty, and reads the answer.
func exchange(t testing.TB, ts *testServer, form url.Values, proof string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return send(t, req)
}

func send(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// exchangeForm is the form an agent sends for its own task.
func exchangeForm(subjectToken, taskID string) url.Values {
	return url.Values{
		"grant_type":         {credential.GrantTypeTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {credential.TokenTypeJWT},
		"scope":              {"task:" + taskID},
	}
}

// oauthError decodes an RFC 6749 error answer and checks status and code.
func wantOAuthError(t *testing.T, a answer, status int, code string) string {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || a.status != status || e.Error != code {
		t.Fatalf("answer %d %s, want %d %s", a.status, a.body, status, code)
	}
	if strings.Contains(string(a.body), "eyJ") {
		t.Errorf("error answer echoes a token: %s", a.body)
	}
	return e.Description
}

// tokenOf decodes a successful exchange answer.
func tokenOf(t *testing.T, a answer) api.TokenResponse {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", a.status, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("token answer Cache-Control = %q", a.header.Get("Cache-Control"))
	}
	return decodeAs[api.TokenResponse](t, a)
}

// claims decodes a JWT's payload without checking it.
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// openTask opens a task for agent as requester and returns the answer.
func openTask(t *testing.T, ts *testServer, requester, agent string, sc api.Scope, parent *string) api.TaskOpened {
	t.Helper()
	a := do(t, "POST", ts.url+"/v1/tasks", requester, mustJSON(t, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices", Scope: sc, TTL: "15m", Parent: parent}))
	if a.status != http.StatusCreated {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	return decodeAs[api.TaskOpened](t, a)
}

// openKB opens, with token, a low-risk task (active at once) that may
// search the public knowledge base in env.
func openKB(t *testing.T, ts *testServer, token, env string) api.TaskOpened {
	t.Helper()
	open := api.OpenTask{Agent: "spiffe://example.org/agent/summarizer", Intent: "Search the knowledge base",
		Scope: api.Scope{Tools: []string{"kb.search"}, Resources: []string{"kb://public/*"},
			Operations: []string{"read"}, DataClass: "internal", Environments: []string{env}}, TTL: "15m"}
	a := do(t, "POST", ts.url+"/v1/tasks", token, mustJSON(t, open))
	if a.status != http.StatusCreated {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	return decodeAs[api.TaskOpened](t, a)
}

func invoiceScope(env string) api.Scope {
	return api.Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://invoices/2026-Q3/*"},
		Operations: []string{"read"}, DataClass: "confidential", Environments: []string{env}}
}

func TestJWKSIsPublic(t *testing.T) {
	ts, _ := startTaskServer(t, "dev")
	a := do(t, "GET", ts.url+"/oauth2/jwks", "", nil)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %s %q", a.status, a.body, a.header.Get("Content-Type"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(a.body, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Algorithm != "EdDSA" || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks %s: %v", a.body, err)
	}
	// A token from the exchange verifies with the published key.
	opened := openTask(t, ts, devTokenFor(t, ts, "alice", identity.RoleRequester), agentA, invoiceScope("dev"), nil)
	tok := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), ""))
	jws, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set.Keys[0]); err != nil {
		t.Errorf("the access token does not verify with the JWKS: %v", err)
	}
}

func devTokenFor(t testing.TB, ts *testServer, name string, roles ...identity.Role) string {
	t.Helper()
	s, err := identity.DevToken(ts.dir, name, roles, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExchangeRefusals(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	pending := openTask(t, ts, tok["alice"], agentA, invoiceScope("prod"), nil)
	if pending.State != api.StatePendingApproval {
		t.Fatalf("task state %s, want pending_approval", pending.State)
	}
	svidA, svidB := svid(t, ts, agentA), svid(t, ts, agentB)

	// A pending task gets no token.
	wantOAuthError(t, exchange(t, ts, exchangeForm(svidA, pending.TaskID), ""), 400, "invalid_grant")
	d := do(t, "POST", ts.url+"/v1/tasks/"+pending.TaskID+"/approvals", tok["bob"], mustJSON(t, api.Decide{Decision: "approve"}))
	if d.status != http.StatusOK {
		t.Fatalf("approve: %d %s", d.status, d.body)
	}

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"agent B asks for agent A's task", exchangeForm(svidB, pending.TaskID), 400, "invalid_grant"},
		{"a human token as subject", exchangeForm(tok["alice"], pending.TaskID), 400, "invalid_grant"},
		{"garbage subject", exchangeForm("not.a.token", pending.TaskID), 400, "invalid_grant"},
		{"unknown task", exchangeForm(svidA, "tsk_nope"), 400, "invalid_grant"},
		{"bad scope", func() url.Values { f := exchangeForm(svidA, pending.TaskID); f.Set("scope", "admin"); return f }(), 400, "invalid_scope"},
		{"other audience", func() url.Values {
			f := exchangeForm(svidA, pending.TaskID)
			f.Set("audience", "https://bank.example")
			return f
		}(), 400, "invalid_target"},
		{"wrong grant", func() url.Values {
			f := exchangeForm(svidA, pending.TaskID)
			f.Set("grant_type", "client_credentials")
			return f
		}(), 400, "unsupported_grant_type"},
		{"delegation with a non-writ subject token", func() url.Values {
			f := exchangeForm(svidA, pending.TaskID)
			f.Set("subject_token_type", credential.TokenTypeAccessToken)
			f.Set("actor_token", svidB)
			f.Set("actor_token_type", credential.TokenTypeJWT)
			return f
		}(), 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOAuthError(t, exchange(t, ts, tt.form, ""), tt.status, tt.code)
		})
	}

	// The refusal of agent B is recorded under the task, without the token.
	tr := decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+pending.TaskID+"/trace", tok["auditor"], nil))
	found := false
	for _, ev := range tr.Events {
		if bytes.Contains(ev.Event, []byte(svidB)) {
			t.Fatal("the ledger holds agent B's SVID")
		}
		var e struct {
			Type  string `json:"type"`
			Agent string `json:"agent"`
			Data  struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		json.Unmarshal(ev.Event, &e)
		if e.Type == "auth.rejected" && e.Agent == agentB && e.Data.Reason == "agent_mismatch" {
			found = true
		}
	}
	if !found {
		t.Error("agent B's refused exchange is not in the task's trace")
	}

	// After the refusals, agent A still gets its token: prod caps it at 5m.
	got := tokenOf(t, exchange(t, ts, exchangeForm(svidA, pending.TaskID), ""))
	if got.ExpiresIn <= 0 || got.ExpiresIn > 300 || got.TokenType != "Bearer" || got.Scope != "task:"+pending.TaskID {
		t.Errorf("token answer %+v", got)
	}
}

func TestDelegation(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	parent := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	parentTok := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), parent.TaskID), "")).AccessToken

	narrow := invoiceScope("dev")
	narrow.Resources = []string{"erp://invoices/2026-Q3/17"}
	child := openTask(t, ts, tok["alice"], agentB, narrow, &parent.TaskID)
	if child.State != api.StateActive {
		t.Fatalf("child task %+v", child)
	}
	form := func(subject, actor, taskID string) url.Values {
		return url.Values{
			"grant_type": {credential.GrantTypeTokenExchange}, "scope": {"task:" + taskID},
			"subject_token": {subject}, "subject_token_type": {credential.TokenTypeAccessToken},
			"actor_token": {actor}, "actor_token_type": {credential.TokenTypeJWT},
		}
	}
	// The child agent cannot skip delegation, nor act for another agent.
	wantOAuthError(t, exchange(t, ts, exchangeForm(svid(t, ts, agentB), child.TaskID), ""), 400, "invalid_grant")
	wantOAuthError(t, exchange(t, ts, form(parentTok, svid(t, ts, agentA), child.TaskID), ""), 400, "invalid_grant")
	// A task that is not the parent's child is refused.
	other := openTask(t, ts, tok["alice"], agentB, narrow, nil)
	wantOAuthError(t, exchange(t, ts, form(parentTok, svid(t, ts, agentB), other.TaskID), ""), 400, "invalid_grant")

	got := tokenOf(t, exchange(t, ts, form(parentTok, svid(t, ts, agentB), child.TaskID), ""))
	c := claims(t, got.AccessToken)
	act, _ := c["act"].(map[string]any)
	inner, _ := act["act"].(map[string]any)
	if act["sub"] != agentB || inner["sub"] != agentA || c["txn"] != child.TaskID {
		t.Errorf("child token claims %v", c)
	}
	// The child token authorizes within the child scope.
	a := authorize(t, ts, "Bearer "+got.AccessToken, "", api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"})
	if a.status != http.StatusOK {
		t.Fatalf("child authorize: %d %s", a.status, a.body)
	}

	// Completing the parent revokes the child's token too.
	if a := do(t, "POST", ts.url+"/v1/tasks/"+parent.TaskID+"/complete", tok["alice"], nil); a.status != http.StatusOK {
		t.Fatalf("complete parent: %d %s", a.status, a.body)
	}
	a = authorize(t, ts, "Bearer "+got.AccessToken, "", api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"})
	wantError(t, a, http.StatusUnauthorized, "invalid_token")
	wantOAuthError(t, exchange(t, ts, form(parentTok, svid(t, ts, agentB), child.TaskID), ""), 400, "invalid_grant")
}
