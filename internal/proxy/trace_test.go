package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/gateway/gatewaytest"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

// TestProxySpans: a proxied call is an execute_tool span continuing the
// agent's trace, with the decision and its records, and the upstream's
// parent is that span; an upstream's 5xx fails the span.
func TestProxySpans(t *testing.T) {
	rec := otlptest.Start(t)
	var mu sync.Mutex
	var got []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		if r.URL.Path == "/repos/acme/broken/issues" {
			http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issues":[]}`))
	}))
	t.Cleanup(up.Close)
	w := gatewaytest.Start(t, config.MCPConfig{}, config.ProxyConfig{Upstreams: map[string]config.ProxyUpstream{
		"tracker": {URL: up.URL, Timeout: 5 * time.Second, Rules: []config.ProxyRule{
			{Method: "GET", Path: "/repos/{owner}/{repo}/issues", Tool: "tracker.issues", Operation: "read",
				Resource: "https://tracker.example/repos/{owner}/{repo}"},
		}}}}, func(c *config.Config) { c.Tracing.Endpoint = rec.URL })
	taskID, token := w.TaskToken(t, issuesScope)

	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	h := http.Header{"Traceparent": {"00-" + trace + "-" + parent + "-01"}}
	if a := send(t, "GET", w.URL+"/proxy/tracker/repos/acme/widgets/issues", token, h, ""); a.status != http.StatusOK {
		t.Fatalf("proxied GET: %d %s", a.status, a.body)
	}
	if a := send(t, "GET", w.URL+"/proxy/tracker/repos/acme/broken/issues", token, nil, ""); a.status != http.StatusInternalServerError {
		t.Fatalf("proxied GET of a broken repo: %d %s", a.status, a.body)
	}
	spans := rec.Await(t, w.Srv.FlushTraces, "execute_tool tracker.issues", 2)
	ok, broken := spans[0], spans[1]
	if ok.TraceID != trace || ok.ParentSpanID != parent || ok.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span %s under %s (%v), want the agent's trace under its span", ok.TraceID, ok.ParentSpanID, ok.Kind)
	}
	for k, v := range map[string]string{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "tracker.issues",
		"writ.point": "proxy", "writ.decision": "allow", "writ.task_id": taskID, "http.response.status_code": "200"} {
		if ok.Attrs[k] != v {
			t.Errorf("span %s = %q, want %q", k, ok.Attrs[k], v)
		}
	}
	if ok.Attrs["writ.ledger.index"] == "" || ok.Attrs["writ.ledger.result_index"] == "" || ok.Attrs["gen_ai.tool.call.id"] == "" {
		t.Errorf("span without its records: %v", ok.Attrs)
	}
	if ok.StatusCode == tracepb.Status_STATUS_CODE_ERROR || broken.StatusCode != tracepb.Status_STATUS_CODE_ERROR || broken.Attrs["error.type"] != "500" {
		t.Errorf("span status %v and %v (%q), want unset and error 500", ok.StatusCode, broken.StatusCode, broken.Attrs["error.type"])
	}
	if broken.ParentSpanID != "" || broken.TraceID == trace {
		t.Errorf("a call without traceparent joined a trace: %s under %s", broken.TraceID, broken.ParentSpanID)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "00-" + trace + "-" + ok.SpanID + "-01"; len(got) != 2 || got[0] != want || got[1] != "00-"+broken.TraceID+"-"+broken.SpanID+"-01" {
		t.Errorf("upstream traceparents %q, want %q first", got, want)
	}
}
