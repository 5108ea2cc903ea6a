package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/credential"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
)

// TestTokenBoundToResource: a token asked for one resource (RFC 8707)
// carries it as aud and is refused at every other enforcement point; a
// resource writ does not serve is invalid_target; without one the token
// keeps writ's own audience and works everywhere.
func TestTokenBoundToResource(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not an MCP server", http.StatusBadRequest)
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	cfg.MCP.Servers = map[string]config.MCPServer{"a": {URL: up.URL}, "b": {URL: up.URL}}
	ts := serve(t, cfg)
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	auditor := devTokenFor(t, ts, "audrey", identity.RoleAuditor)
	sc := invoiceScope("dev")
	sc.Tools = append(sc.Tools, "a.*", "b.*")
	opened := openTask(t, ts, alice, agentA, sc, nil)
	svidA := svid(t, ts, agentA)
	withResource := func(res ...string) url.Values {
		f := exchangeForm(svidA, opened.TaskID)
		f["resource"] = res
		return f
	}
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	// mcpStatus posts an MCP initialize with the token to /mcp/<server>.
	mcpStatus := func(server, token string) answer {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.url+"/mcp/"+server, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		return send(t, req)
	}
	refused := func(what string, a answer) {
		t.Helper()
		if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q %s, want 401 invalid_token", what, a.status, a.header.Get("WWW-Authenticate"), a.body)
		}
	}

	forA := tokenOf(t, exchange(t, ts, withResource(ts.url+"/mcp/a"), "")).AccessToken
	if aud := claims(t, forA)["aud"]; aud != ts.url+"/mcp/a" {
		t.Errorf("aud = %v, want the resource", aud)
	}
	if a := mcpStatus("a", forA); a.status == http.StatusUnauthorized {
		t.Errorf("the token at its own resource: %d %s", a.status, a.body)
	}
	refused("token for /mcp/a at /mcp/b", mcpStatus("b", forA))
	refused("token for /mcp/a at /v1/authorize", authorize(t, ts, "Bearer "+forA, "", in))

	forAPI := tokenOf(t, exchange(t, ts, withResource(ts.url+"/v1/authorize"), "")).AccessToken
	if a := authorize(t, ts, "Bearer "+forAPI, "", in); a.status != http.StatusOK {
		t.Errorf("token for the decision API there: %d %s", a.status, a.body)
	}
	refused("token for the decision API at /mcp/a", mcpStatus("a", forAPI))

	for name, form := range map[string]url.Values{
		"unconfigured server":   withResource(ts.url + "/mcp/evil"),
		"below a server":        withResource(ts.url + "/mcp/a/tools"),
		"another host":          withResource("https://elsewhere.example/mcp/a"),
		"unknown path":          withResource(ts.url + "/v1/tasks"),
		"two resources":         withResource(ts.url+"/mcp/a", ts.url+"/mcp/b"),
		"query in the resource": withResource(ts.url + "/mcp/a?x=1"),
	} {
		t.Run(name, func(t *testing.T) {
			wantOAuthError(t, exchange(t, ts, form, ""), http.StatusBadRequest, "invalid_target")
		})
	}

	// No resource, or writ itself: writ's own audience, accepted everywhere.
	for _, form := range []url.Values{exchangeForm(svidA, opened.TaskID), withResource(ts.url), withResource(ts.url + "/")} {
		tok := tokenOf(t, exchange(t, ts, form, "")).AccessToken
		if aud := claims(t, tok)["aud"]; aud != "writ" {
			t.Errorf("default aud = %v, want writ", aud)
		}
		if a := authorize(t, ts, "Bearer "+tok, "", in); a.status != http.StatusOK {
			t.Errorf("default token at /v1/authorize: %d %s", a.status, a.body)
		}
		if a := mcpStatus("b", tok); a.status == http.StatusUnauthorized {
			t.Errorf("default token at /mcp/b: %d %s", a.status, a.body)
		}
	}

	// The refusals are evidence.
	tr := decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID+"/trace", auditor, nil))
	var rejected int
	for _, ev := range tr.Events {
		if strings.Contains(string(ev.Event), `"auth.rejected"`) && strings.Contains(string(ev.Event), "issued for resource") {
			rejected++
		}
	}
	if rejected != 3 {
		t.Errorf("%d audience refusals recorded, want 3", rejected)
	}
}

// TestDelegatedTokenKeepsParentResource: a child token obtained with a
// parent token bound to a resource is bound to the same one, and cannot
// ask for another.
func TestDelegatedTokenKeepsParentResource(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	parent := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	api := ts.url + "/v1/authorize"
	f := exchangeForm(svid(t, ts, agentA), parent.TaskID)
	f.Set("resource", api)
	parentTok := tokenOf(t, exchange(t, ts, f, "")).AccessToken
	child := openTask(t, ts, tok["alice"], agentB, invoiceScope("dev"), &parent.TaskID)
	form := url.Values{
		"grant_type": {credential.GrantTypeTokenExchange}, "scope": {"task:" + child.TaskID},
		"subject_token": {parentTok}, "subject_token_type": {credential.TokenTypeAccessToken},
		"actor_token": {svid(t, ts, agentB)}, "actor_token_type": {credential.TokenTypeJWT},
	}
	childTok := tokenOf(t, exchange(t, ts, form, "")).AccessToken
	if aud := claims(t, childTok)["aud"]; aud != api {
		t.Errorf("child aud = %v, want the parent's resource %s", aud, api)
	}
	form.Set("resource", ts.url)
	if aud := claims(t, tokenOf(t, exchange(t, ts, form, "")).AccessToken)["aud"]; aud != api {
		t.Errorf("child asking for all of writ got aud %v, want %s", aud, api)
	}
	form.Set("resource", ts.url+"/v1/authorize/")
	tokenOf(t, exchange(t, ts, form, ""))
	form.Set("resource", ts.url+"/nothing")
	wantOAuthError(t, exchange(t, ts, form, ""), http.StatusBadRequest, "invalid_target")
}
