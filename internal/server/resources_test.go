package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
)

// TestResourceRefusals: over HTTP, a scope pattern or a call's resource
// that climbs out of kb://public/* is a 400 naming it, and nothing of the
// call is decided.
func TestResourceRefusals(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	kb := func(res ...string) api.Scope {
		return api.Scope{Tools: []string{"kb.*"}, Resources: res, Operations: []string{"read"}, DataClass: "internal", Environments: []string{"dev"}}
	}
	for _, p := range []string{"kb://public/../private/*", "kb://public/%2e%2e/*"} {
		a := do(t, "POST", ts.url+"/v1/tasks", tok["alice"], mustJSON(t, api.OpenTask{Agent: agentA, Intent: "x", Scope: kb(p)}))
		wantError(t, a, http.StatusBadRequest, "invalid_request")
		if !strings.Contains(string(a.body), "scope.resources") {
			t.Errorf("open with %q: %s does not name the pattern", p, a.body)
		}
	}

	opened := openTask(t, ts, tok["alice"], agentA, kb("kb://public/*"), nil)
	bearer := "Bearer " + tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	for _, res := range []string{"kb://public/../private/secret", "kb://public/%2e%2e/private/x", "kb://public/x?x=../.."} {
		a := authorize(t, ts, bearer, "", api.Authorize{Tool: "kb.read", Operation: "read", Resource: res})
		wantError(t, a, http.StatusBadRequest, "invalid_request")
	}
	if a := authorize(t, ts, bearer, "", api.Authorize{Tool: "kb.read", Operation: "read", Resource: "KB://Public/faq"}); a.status != http.StatusOK {
		t.Errorf("KB://Public/faq: %d %s", a.status, a.body)
	}
}
