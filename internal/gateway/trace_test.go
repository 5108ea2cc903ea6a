package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

// traceUpstream is an MCP server whose tool "where" notes the _meta
// traceparent it was called with, and the traceparent header of every
// HTTP request it gets.
type traceUpstream struct {
	url     string
	mu      sync.Mutex
	meta    []string
	headers []string
}

func (u *traceUpstream) seen() (meta, headers []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.meta...), append([]string(nil), u.headers...)
}

func startTraceUpstream(t *testing.T) *traceUpstream {
	t.Helper()
	u := &traceUpstream{}
	s := mcp.NewServer(&mcp.Implementation{Name: "traced", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "where"}, func(ctx context.Context, r *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
		tp, _ := r.Params.Meta["traceparent"].(string)
		u.mu.Lock()
		u.meta = append(u.meta, tp)
		u.mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "here"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tp := r.Header.Get("Traceparent"); tp != "" {
			u.mu.Lock()
			u.headers = append(u.headers, tp)
			u.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	u.url = ts.URL
	return u
}

// whereScope lets a task call the trace upstream's where tool.
var whereScope = api.Scope{Tools: []string{"up.where"}, Resources: []string{"mcp://up/tools/*"},
	Operations: []string{"call"}, DataClass: "internal", Environments: []string{"dev"}}

// tracedWrit starts the trace upstream, as server "up", behind a writ
// that exports its spans to a receiver of the test's own.
func tracedWrit(t *testing.T) (*otlptest.Receiver, *traceUpstream, *writ) {
	t.Helper()
	rec := otlptest.Start(t)
	up := startTraceUpstream(t)
	return rec, up, upWrit(t, up.url, func(c *config.Config) { c.Tracing.Endpoint = rec.URL })
}

const (
	agentTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	agentParent = "00f067aa0ba902b7"
	agentTP     = "00-" + agentTrace + "-" + agentParent + "-01"
)

// TestMCPToolCallSpans: a tools/call through the gateway is an
// execute_tool span that continues the agent's trace from _meta, carries
// the decision and the ledger indexes of its records, and is the parent
// the upstream sees, in _meta and in the HTTP header.
func TestMCPToolCallSpans(t *testing.T) {
	rec, up, w := tracedWrit(t)
	taskID, token := w.TaskToken(t, whereScope)
	cs := goClient(t, w.URL+"/mcp/up", token, "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "where", Meta: mcp.Meta{"traceparent": agentTP}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v %v", err, res)
	}
	// A call outside the scope is denied: a span of its own, nothing
	// upstream.
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "elsewhere", Meta: mcp.Meta{"traceparent": agentTP}}); err != nil || !res.IsError {
		t.Fatalf("a call outside the scope: %v %v", err, res)
	}
	rec.Await(t, w.Srv.FlushTraces, "execute_tool up.elsewhere", 1)
	spans := rec.Await(t, w.Srv.FlushTraces, "execute_tool up.where", 1)
	if len(spans) != 1 {
		t.Fatalf("%d execute_tool up.where spans; all: %v", len(spans), rec.Spans())
	}
	s := spans[0]
	if s.TraceID != agentTrace || s.ParentSpanID != agentParent || s.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span %s under %s (%v), want the agent's trace under its span", s.TraceID, s.ParentSpanID, s.Kind)
	}
	evs := w.Trace(t, taskID)
	var actionID string
	if a := ofType(evs, "action.authorized"); len(a) == 1 {
		actionID = a[0].Data.ActionID
	}
	want := map[string]string{
		"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "up.where", "gen_ai.tool.call.id": actionID,
		"mcp.method.name": "tools/call", "mcp.session.id": tracing.SessionDigest(cs.ID()),
		"writ.point": "mcp", "writ.decision": "allow", "writ.task_id": taskID,
	}
	for k, v := range want {
		if s.Attrs[k] != v || v == "" {
			t.Errorf("span %s = %q, want %q", k, s.Attrs[k], v)
		}
	}
	if s.StatusCode == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("an allowed, answered call's span is failed: %v", s.Attrs)
	}
	// Its indexes name its records, in the task's trace.
	indexOf := func(typ string) string {
		var tr api.Trace
		w.Do(t, "GET", "/v1/tasks/"+taskID+"/trace", w.Tok["audrey"], nil, &tr)
		for i, e := range evs {
			if e.Type == typ {
				return strconv.FormatUint(tr.Events[i].Index, 10)
			}
		}
		return "none"
	}
	if got, want := s.Attrs["writ.ledger.index"], indexOf("action.authorized"); got != want {
		t.Errorf("writ.ledger.index %s, action.authorized is at %s", got, want)
	}
	if got, want := s.Attrs["writ.ledger.result_index"], indexOf("action.completed"); got != want {
		t.Errorf("writ.ledger.result_index %s, action.completed is at %s", got, want)
	}

	// The upstream's parent is writ's span, in _meta and in the header.
	writTP := "00-" + agentTrace + "-" + s.SpanID + "-01"
	meta, headers := up.seen()
	if len(meta) != 1 || meta[0] != writTP {
		t.Errorf("upstream _meta traceparent %q, want %q", meta, writTP)
	}
	found := false
	for _, h := range headers {
		found = found || h == writTP
	}
	if !found {
		t.Errorf("no upstream request carried traceparent %s: %q", writTP, headers)
	}

	denied := rec.Named("execute_tool up.elsewhere")
	if len(denied) != 1 || denied[0].Attrs["writ.decision"] != "deny" || denied[0].StatusCode == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("the denied call's span: %v", denied)
	}
	for _, s := range rec.Spans() {
		for k, v := range s.Attrs {
			if strings.Contains(v, token) || strings.Contains(v, cs.ID()) && cs.ID() != "" {
				t.Errorf("span %s attribute %s holds the token or the raw session id", s.Name, k)
			}
		}
	}
}

// TestMCPTraceFromHeader: without _meta, the HTTP request's traceparent
// is the parent.
func TestMCPTraceFromHeader(t *testing.T) {
	rec, up, w := tracedWrit(t)
	_, token := w.TaskToken(t, whereScope)
	c := mcp.NewClient(&mcp.Implementation{Name: "traced-client", Version: "1"}, nil)
	cs := connectVia(t, c, w.URL+"/mcp/up", bearer{token: token, extra: http.Header{"Traceparent": {agentTP}}}, "")
	defer cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "where"}); err != nil {
		t.Fatal(err)
	}
	spans := rec.Await(t, w.Srv.FlushTraces, "execute_tool up.where", 1)
	if len(spans) != 1 || spans[0].TraceID != agentTrace || spans[0].ParentSpanID != agentParent {
		t.Fatalf("spans %v, want one under the header's %s", spans, agentTP)
	}
	if meta, _ := up.seen(); len(meta) != 1 || !strings.HasPrefix(meta[0], "00-"+agentTrace+"-"+spans[0].SpanID) {
		t.Errorf("upstream _meta traceparent %q", meta)
	}
}
