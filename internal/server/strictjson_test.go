package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
)

// rawPost posts body with the given Content-Type ("" sends none) and
// Authorization, and reads the whole answer.
func rawPost(t *testing.T, url, authz, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return send(t, req)
}

// TestStrictJSONBodies: every JSON endpoint refuses unknown members, case
// variants of known ones and duplicate names at any depth (inside
// arguments, output and event data too) with 400 naming the member, and a
// body that is not application/json with 415. None of it reaches the
// ledger.
func TestStrictJSONBodies(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	task := "Bearer " + tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	alice, bob, admin := "Bearer "+tok["alice"], "Bearer "+tok["bob"], "Bearer "+tok["admin"]
	const agent = `"agent":"spiffe://writ.dev/agent/a","intent":"Summarize Q3 invoices","ttl":"15m"`
	const scope = `"tools":["invoices.*"],"resources":["erp://invoices/2026-Q3/*"],"operations":["read"],"data_class":"confidential","environments":["dev"]`
	const call = `"tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/17","data_class":"confidential"`
	before := len(events(t, ts, tok["auditor"], opened.TaskID))

	for _, tc := range []struct {
		name, path, authz, ct, body string
		status                      int
		code, detail                string
	}{
		{"open: case variant", "/v1/tasks", alice, "application/json", `{` + agent + `,"AGENT":"spiffe://writ.dev/agent/b","scope":{` + scope + `}}`,
			400, "invalid_request", `unknown field "AGENT" (names are case-sensitive: did you mean "agent"?)`},
		{"open: duplicate agent", "/v1/tasks", alice, "application/json", `{` + agent + `,"agent":"spiffe://writ.dev/agent/b","scope":{` + scope + `}}`,
			400, "invalid_request", `duplicate key "agent"`},
		{"open: unknown scope field", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"tool":["x"]}}`,
			400, "invalid_request", `unknown field "scope.tool"`},
		{"open: unknown scope.limits field", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"calls":3,"total":9}}}`,
			400, "invalid_request", `unknown field "scope.limits.total"`},
		{"open: scope.limits.calls zero", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"calls":0}}}`,
			400, "invalid_request", "scope.limits.calls is 0; want 1 to 1000000000"},
		{"open: scope.limits.calls a string", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"calls":"3"}}}`,
			400, "invalid_request", "scope.limits.calls"},
		{"open: scope.limits.per_minute a fraction", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"per_minute":2.5}}}`,
			400, "invalid_request", "scope.limits.per_minute"},
		{"open: scope.limits.per_tool negative", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"per_tool":{"mail.send":-1}}}}`,
			400, "invalid_request", `scope.limits.per_tool["mail.send"] is -1`},
		{"open: duplicate scope.limits key", "/v1/tasks", alice, "application/json", `{` + agent + `,"scope":{` + scope + `,"limits":{"calls":3,"calls":900}}}`,
			400, "invalid_request", `duplicate key "scope.limits.calls"`},
		{"open: text/plain", "/v1/tasks", alice, "text/plain", `{` + agent + `,"scope":{` + scope + `}}`,
			415, "unsupported_media_type", "application/json"},
		{"open: no Content-Type", "/v1/tasks", alice, "", `{` + agent + `,"scope":{` + scope + `}}`,
			415, "unsupported_media_type", "application/json"},
		{"approve task: case variant", "/v1/tasks/" + opened.TaskID + "/approvals", bob, "application/json", `{"decision":"deny","Decision":"approve"}`,
			400, "invalid_request", `unknown field "Decision"`},
		{"decide step-up: unknown field", "/v1/approvals/apr_x", bob, "application/json", `{"decision":"approve","why":"ok"}`,
			400, "invalid_request", `unknown field "why"`},
		{"decide step-up: form body", "/v1/approvals/apr_x", bob, "application/x-www-form-urlencoded", `decision=approve`,
			415, "unsupported_media_type", "application/json"},
		{"revoke: unknown field", "/v1/tasks/" + opened.TaskID + "/revoke", alice, "application/json", `{"reason":"x","cascade":false}`,
			400, "invalid_request", `unknown field "cascade"`},
		{"authorize: args for arguments", "/v1/authorize", task, "application/json", `{` + call + `,"args":{"id":17}}`,
			400, "invalid_request", `unknown field "args"`},
		{"authorize: duplicate in arguments", "/v1/authorize", task, "application/json", `{` + call + `,"arguments":{"id":17,"id":18}}`,
			400, "invalid_request", `duplicate key "arguments.id"`},
		{"authorize: duplicate deep in arguments", "/v1/authorize", task, "application/json", `{` + call + `,"arguments":{"q":[{"id":1,"\u0069d":2}]}}`,
			400, "invalid_request", `duplicate key "arguments.q.0.id"`},
		{"authorize: case variant", "/v1/authorize", task, "application/json", `{` + call + `,"Resource":"erp://payroll/x"}`,
			400, "invalid_request", `unknown field "Resource"`},
		{"authorize: text/plain", "/v1/authorize", task, "text/plain", `{` + call + `}`,
			415, "unsupported_media_type", "application/json"},
		{"authorize: another charset", "/v1/authorize", task, "application/json; charset=utf-16", `{` + call + `}`,
			415, "unsupported_media_type", "application/json"},
		{"result: duplicate in output", "/v1/actions/act_x/result", task, "application/json", `{"status":"ok","output":{"total":1,"total":2}}`,
			400, "invalid_request", `duplicate key "output.total"`},
		{"result: unknown field", "/v1/actions/act_x/result", task, "application/json", `{"status":"ok","outcome":"fine"}`,
			400, "invalid_request", `unknown field "outcome"`},
		{"append: duplicate in data", "/v1/ledger/events", admin, "application/json", `{"type":"import.test","data":{"k":1,"k":2}}`,
			400, "invalid_event", `duplicate key "data.k"`},
		{"append: case variant", "/v1/ledger/events", admin, "application/json", `{"type":"import.test","Type":"task.completed"}`,
			400, "invalid_event", `unknown field "Type"`},
		{"append ndjson: duplicate in a line", "/v1/ledger/events", admin, "application/x-ndjson", "{\"type\":\"import.test\"}\n{\"type\":\"import.test\",\"task_id\":\"a\",\"task_id\":\"b\"}\n",
			400, "invalid_event", `duplicate key "task_id"`},
		{"append: text/plain", "/v1/ledger/events", admin, "text/plain", `{"type":"import.test"}`,
			415, "unsupported_media_type", "application/x-ndjson"},
		{"erase: case variant", "/v1/ledger/erasures", admin, "application/json", `{"index":0,"name":"x","reason":"y","Name":"z"}`,
			400, "invalid_request", `unknown field "Name"`},
		{"erase: text/plain", "/v1/ledger/erasures", admin, "text/plain", `{"index":0,"name":"x","reason":"y"}`,
			415, "unsupported_media_type", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := rawPost(t, ts.url+tc.path, tc.authz, tc.ct, tc.body)
			e := decodeAs[api.Error](t, a)
			if a.status != tc.status || e.Error != tc.code || !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("answer %d %s; want %d %s with %q", a.status, a.body, tc.status, tc.code, tc.detail)
			}
		})
	}

	// The task is as it was: no refused body authorized, decided or ended
	// anything.
	if after := len(events(t, ts, tok["auditor"], opened.TaskID)); after != before {
		t.Errorf("the refused bodies left %d events under the task", after-before)
	}
	if v := decodeAs[api.Task](t, do(t, "GET", ts.url+"/v1/tasks/"+opened.TaskID, tok["alice"], nil)); v.State != api.StateActive {
		t.Errorf("task state %s, want active", v.State)
	}
	// The exact body passes.
	if a := rawPost(t, ts.url+"/v1/authorize", task, "application/json; charset=utf-8", `{`+call+`,"arguments":{"id":17}}`); a.status != http.StatusOK {
		t.Errorf("the exact body: %d %s", a.status, a.body)
	}
}

// TestTokenEndpointDuplicateParameters: the token endpoint takes a form
// (RFC 8693), and a parameter sent twice is refused (RFC 6749 §3.2).
func TestTokenEndpointDuplicateParameters(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	for _, p := range []string{"grant_type", "subject_token", "scope"} {
		f := exchangeForm(svid(t, ts, agentA), opened.TaskID)
		f[p] = append(f[p], f.Get(p))
		if d := wantOAuthError(t, exchange(t, ts, f, ""), http.StatusBadRequest, "invalid_request"); !strings.Contains(d, p) {
			t.Errorf("%s twice: detail %q does not name it", p, d)
		}
	}
}
