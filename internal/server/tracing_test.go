package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

// Callers' traces: trace id and parent span id of a traceparent.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerParent = "00f067aa0ba902b7"
	otherTrace   = "0af7651916cd43dd8448eb211c80319c"
	otherParent  = "b7ad6b7169203331"
)

func traceparent(trace, parent string) string { return "00-" + trace + "-" + parent + "-01" }

// tracedServer starts a dev server exporting its spans to a receiver.
func tracedServer(t *testing.T) (*testServer, *otlptest.Receiver) {
	t.Helper()
	rec := otlptest.Start(t)
	cfg := servertest.Dev(t.TempDir(), "dev")
	cfg.Tracing.Endpoint = rec.URL
	cfg.Tracing.ServiceName = "writ-under-test"
	return serve(t, cfg), rec
}

// oneSpan flushes ts's spans and returns the only one named name.
func oneSpan(t *testing.T, ts *testServer, rec *otlptest.Receiver, name string) otlptest.Span {
	t.Helper()
	got := rec.Await(t, ts.srv.FlushTraces, name, 1)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want 1; all: %v", len(got), name, rec.Spans())
	}
	return got[0]
}

// eventAt returns the type and task of the event at index in task's
// trace.
func eventAt(t *testing.T, ts *testServer, token, taskID, index string) (typ, task, policyVersion string) {
	t.Helper()
	a := do(t, http.MethodGet, ts.url+"/v1/tasks/"+taskID+"/trace", token, nil)
	if a.status != http.StatusOK {
		t.Fatalf("trace: %d %s", a.status, a.body)
	}
	tr := decodeAs[api.Trace](t, a)
	for _, e := range tr.Events {
		if strconv.FormatUint(e.Index, 10) == index {
			var ev struct {
				Type          string `json:"type"`
				TaskID        string `json:"task_id"`
				PolicyVersion string `json:"policy_version"`
			}
			if err := json.Unmarshal(e.Event, &ev); err != nil {
				t.Fatal(err)
			}
			return ev.Type, ev.TaskID, ev.PolicyVersion
		}
	}
	t.Fatalf("no event at index %s in the trace of %s", index, taskID)
	return
}

func TestTracesDecisionAPI(t *testing.T) {
	ts, rec := tracedServer(t)
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	auditor := devTokenFor(t, ts, "audrey", identity.RoleAuditor)
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)

	subject := svid(t, ts, agentA)
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/oauth2/token", strings.NewReader(exchangeForm(subject, opened.TaskID).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Traceparent", traceparent(otherTrace, otherParent))
	access := tokenOf(t, send(t, req)).AccessToken

	const secret = "sk-live-4f9a8b7c6d5e4f3a2b1c"
	call := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: json.RawMessage(`{"id": 17, "api_key": "` + secret + `"}`), DataClass: "confidential"}
	r, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/authorize", strings.NewReader(string(mustJSON(t, call))))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+access)
	r.Header.Set("Traceparent", traceparent(callerTrace, callerParent))
	a := send(t, r)
	if a.status != http.StatusOK {
		t.Fatalf("authorize: %d %s", a.status, a.body)
	}
	out := decodeAs[api.Authorized](t, a)

	// The decision API's span continues the caller's trace.
	s := oneSpan(t, ts, rec, "POST /v1/authorize")
	if s.TraceID != callerTrace || s.ParentSpanID != callerParent || s.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span %s/%s kind %v, want the caller's trace %s under %s, server kind", s.TraceID, s.ParentSpanID, s.Kind, callerTrace, callerParent)
	}
	want := map[string]string{
		"writ.point": "api", "writ.decision": "allow", "writ.task_id": opened.TaskID, "writ.decision_id": out.DecisionID,
		"gen_ai.tool.name": "invoices.read", "gen_ai.tool.call.id": out.ActionID,
		"http.route": "POST /v1/authorize", "http.response.status_code": "200", "http.request.method": "POST",
	}
	for k, v := range want {
		if s.Attrs[k] != v {
			t.Errorf("authorize span %s = %q, want %q", k, s.Attrs[k], v)
		}
	}
	if s.Resource["service.name"] != "writ-under-test" {
		t.Errorf("service.name %q", s.Resource["service.name"])
	}
	// writ.ledger.index names the decision's record, which proves it.
	typ, task, pv := eventAt(t, ts, auditor, opened.TaskID, s.Attrs["writ.ledger.index"])
	if typ != "action.authorized" || task != opened.TaskID || pv == "" || s.Attrs["writ.policy_version"] != pv {
		t.Errorf("writ.ledger.index %s is %s of %s (policy %s); span policy %s", s.Attrs["writ.ledger.index"], typ, task, pv, s.Attrs["writ.policy_version"])
	}

	// The exchange's span, its own trace's, names the policy.decided
	// record of the exchange.
	x := oneSpan(t, ts, rec, "POST /oauth2/token")
	if x.TraceID != otherTrace || x.ParentSpanID != otherParent {
		t.Errorf("exchange span %s/%s, want %s/%s", x.TraceID, x.ParentSpanID, otherTrace, otherParent)
	}
	if x.Attrs["writ.decision"] != "allow" || x.Attrs["writ.point"] != "token" || x.Attrs["writ.task_id"] != opened.TaskID {
		t.Errorf("exchange span attributes %v", x.Attrs)
	}
	if typ, task, _ := eventAt(t, ts, auditor, opened.TaskID, x.Attrs["writ.ledger.index"]); typ != "policy.decided" || task != opened.TaskID {
		t.Errorf("exchange writ.ledger.index %s is %s of %s", x.Attrs["writ.ledger.index"], typ, task)
	}

	// The result's span names the action.completed record.
	res := postWithToken(t, ts, "/v1/actions/"+out.ActionID+"/result", "Bearer "+access, "", mustJSON(t, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total": 1}`)}))
	if res.status != http.StatusOK {
		t.Fatalf("result: %d %s", res.status, res.body)
	}
	rs := oneSpan(t, ts, rec, "POST /v1/actions/{id}/result")
	if rs.ParentSpanID != "" {
		t.Errorf("a call without traceparent has a parent: %s", rs.ParentSpanID)
	}
	if typ, _, _ := eventAt(t, ts, auditor, opened.TaskID, rs.Attrs["writ.ledger.result_index"]); typ != "action.completed" {
		t.Errorf("writ.ledger.result_index %s is %s", rs.Attrs["writ.ledger.result_index"], typ)
	}

	// A denial is a span too; no span holds a token or an argument.
	call.Tool = "mail.send"
	if a := authorize(t, ts, "Bearer "+access, "", call); a.status != http.StatusForbidden {
		t.Fatalf("denied call: %d %s", a.status, a.body)
	}
	spans := rec.Await(t, ts.srv.FlushTraces, "POST /v1/authorize", 2)
	if len(spans) != 2 || spans[1].Attrs["writ.decision"] != "deny" || spans[1].Attrs["gen_ai.tool.name"] != "mail.send" {
		t.Errorf("the denied call's span: %v", spans)
	}
	for _, s := range rec.Spans() {
		for k, v := range s.Attrs {
			for _, bad := range []string{secret, access, subject, "Bearer"} {
				if strings.Contains(v, bad) {
					t.Errorf("span %s attribute %s holds a secret: %q", s.Name, k, v)
				}
			}
		}
	}
}

// TestTracingDisabled: OTEL_SDK_DISABLED=true turns tracing off, whatever
// the file says: nothing reaches the collector, and the server works.
func TestTracingDisabled(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	ts, rec := tracedServer(t)
	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	access := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	r, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/authorize", strings.NewReader(`{"tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+access)
	r.Header.Set("Traceparent", traceparent(callerTrace, callerParent))
	if a := send(t, r); a.status != http.StatusOK {
		t.Fatalf("authorize: %d %s", a.status, a.body)
	}
	if err := ts.srv.FlushTraces(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.Spans(); len(got) != 0 {
		t.Errorf("spans with OTEL_SDK_DISABLED=true: %v", got)
	}
}
