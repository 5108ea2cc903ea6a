package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
)

// TestControlCharactersRefused: identifiers and scope strings take no
// control or format character, free text no control character but tab and
// line breaks and no bidirectional override; each refusal is a 400 naming
// the field and the character.
func TestControlCharactersRefused(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	bearer := "Bearer " + tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	open := func(edit func(*api.OpenTask)) []byte {
		o := api.OpenTask{Agent: agentA, Intent: "Summarize Q3 invoices", Scope: invoiceScope("dev"), TTL: "15m"}
		edit(&o)
		return mustJSON(t, o)
	}
	call := func(edit func(*api.Authorize)) []byte {
		a := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", DataClass: "confidential"}
		edit(&a)
		return mustJSON(t, a)
	}
	for _, tc := range []struct {
		name, path, authz string
		body              []byte
		detail            string
	}{
		{"agent with NUL", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Agent += "\x00" }), "agent holds U+0000 (NUL)"},
		{"agent with an override", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Agent = "spiffe://writ.dev/agent/\u202eb" }), "agent holds U+202E"},
		{"intent with an override", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Intent = "Read invoices \u202eyap dna" }), "intent holds U+202E (a bidirectional override)"},
		{"intent with an isolate", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Intent = "Read \u2066invoices\u2069" }), "intent holds U+2066"},
		{"intent with escape", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Intent = "Read \x1b[2Jinvoices" }), "intent holds U+001B"},
		{"tool pattern with an isolate", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Scope.Tools = []string{"invoices.*", "mail\u2067.send"} }), "scope.tools[1] holds U+2067"},
		{"resource pattern with DEL", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Scope.Resources = []string{"erp://invoices/\x7f*"} }), "scope.resources[0] holds U+007F"},
		{"operation with a C1 control", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Scope.Operations = []string{"read\u0085"} }), "scope.operations[0] holds U+0085"},
		{"environment with a zero-width space", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { o.Scope.Environments = []string{"de\u200bv"} }), "scope.environments[0] holds U+200B"},
		{"parent with a newline", "/v1/tasks", "Bearer " + tok["alice"], open(func(o *api.OpenTask) { p := opened.TaskID + "\n"; o.Parent = &p }), "parent holds U+000A"},
		{"call: tool with an override", "/v1/authorize", bearer, call(func(a *api.Authorize) { a.Tool = "invoices.\u202edaer" }), "tool holds U+202E"},
		{"call: resource with NUL", "/v1/authorize", bearer, call(func(a *api.Authorize) { a.Resource += "\x00" }), "resource holds U+0000"},
		{"call: operation with a tag character", "/v1/authorize", bearer, call(func(a *api.Authorize) { a.Operation = "read\U000E0041" }), "operation holds U+E0041"},
		{"approval reason with an override", "/v1/approvals/apr_any", "Bearer " + tok["bob"], mustJSON(t, api.Decide{Decision: "deny", Reason: "fine \u202e"}), "reason holds U+202E"},
		{"revoke reason with NUL", "/v1/tasks/" + opened.TaskID + "/revoke", "Bearer " + tok["alice"], []byte(`{"reason":"done\u0000"}`), "reason holds U+0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := postWithToken(t, ts, tc.path, tc.authz, "", tc.body)
			e := decodeAs[api.Error](t, a)
			if a.status != http.StatusBadRequest || e.Error != "invalid_request" || !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("answer %d %s; want 400 invalid_request with %q", a.status, a.body, tc.detail)
			}
		})
	}
	// Free text keeps its tabs and line breaks, and the marks scripts need.
	if a := do(t, "POST", ts.url+"/v1/tasks", tok["alice"], open(func(o *api.OpenTask) { o.Intent = "Summarize:\n\t- Q3 invoices\r\n\t- שלום\u200f!" })); a.status != http.StatusCreated {
		t.Errorf("intent with line breaks: %d %s", a.status, a.body)
	}
	// The task is untouched by the refused calls.
	if v := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID, tok["alice"], nil)); v.State != api.StateActive {
		t.Errorf("task is %s", v.State)
	}
}
