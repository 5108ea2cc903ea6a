package gateway

import (
	"context"
	"errors"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/tracing"
)

// traceCall begins the span of a mediated request, with tracing on: an
// execute_tool span for a tool call, one named after the method
// otherwise. It continues the trace of the request's _meta traceparent,
// or else its HTTP header's; the decision and its record add to it.
func (g *Gateway) traceCall(ctx context.Context, c *call, method string, req mcp.Request) (context.Context, tracing.Span) {
	if !g.cfg.Tracer.Enabled() {
		return ctx, tracing.Span{}
	}
	tc := tracing.Call{Point: policy.GatewayMCP, Method: method}
	if extra := req.GetExtra(); extra != nil {
		tc.Header = extra.Header
	}
	if p, ok := req.GetParams().(interface{ GetMeta() map[string]any }); ok && !isNil(p) {
		tc.Meta = p.GetMeta()
	}
	if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && p != nil {
		tc.Tool = ToolName(c.server, p.Name)
	}
	if s := req.GetSession(); !isNil(s) {
		tc.Session = s.ID()
	}
	return g.cfg.Tracer.StartCall(ctx, tc)
}

// endCall marks the span of a request that failed and ends it: a JSON-RPC
// error by its code, a tool's error result as tool_error (a denial is
// writ's answer, not a failure; the span's writ.decision says so). The
// error's message is not put on the span: an upstream's text may hold
// what the agent sent it.
func endCall(span tracing.Span, res mcp.Result, err error) {
	if !span.On() {
		return
	}
	var we *jsonrpc.Error
	switch {
	case errors.As(err, &we):
		span.Fail(strconv.FormatInt(we.Code, 10), "JSON-RPC error "+strconv.FormatInt(we.Code, 10))
	case err != nil:
		span.Fail("_OTHER", "the request failed")
	default:
		if r, ok := res.(*mcp.CallToolResult); ok && r != nil && r.IsError {
			if _, denied := r.Meta["writ/decision_id"]; !denied {
				span.Fail("tool_error", "the tool answered with an error")
			}
		}
	}
	span.End()
}

// upstreamMeta puts the span's trace context in the _meta writ sends
// upstream (the MCP semantic conventions' propagation, SEP-414), in place
// of the agent's: the upstream's parent is writ's span.
func upstreamMeta(ctx context.Context, m mcp.Meta) mcp.Meta {
	return tracing.InjectMeta(ctx, m)
}
