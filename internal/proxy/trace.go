package proxy

import (
	"net/http"
	"strconv"

	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/tracing"
)

// trace begins the execute_tool span of a proxied call, with tracing on,
// continuing the trace of the agent's traceparent header, and returns the
// request carrying it (r itself with tracing off).
func (h *ruleHandler) trace(r *http.Request) (tracing.Span, *http.Request) {
	if !h.p.cfg.Tracer.Enabled() {
		return tracing.Span{}, r
	}
	ctx, span := h.p.cfg.Tracer.StartCall(r.Context(), tracing.Call{Point: policy.GatewayProxy, Tool: h.rule.Tool, Header: r.Header})
	return span, r.WithContext(ctx)
}

// endCall records the upstream's answer on the span: its status code, and
// a failure when writ recorded the call as one (a 4xx or 5xx, a response
// cut short, a call cancelled).
func endCall(span tracing.Span, code int, status string) {
	if !span.On() {
		return
	}
	span.Set(tracing.KeyHTTPStatus.Int(code))
	if status != "ok" {
		errType := status // a response cut short, a call cancelled
		if code >= 400 {
			errType = strconv.Itoa(code)
		}
		span.Fail(errType, "the call ended "+status)
	}
}
