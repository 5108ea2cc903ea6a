package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys: the OpenTelemetry semantic conventions' (GenAI
// execute_tool spans, MCP, HTTP) and writ's own, which join a span to its
// evidence.
const (
	KeyGenAIOperation = attribute.Key("gen_ai.operation.name")
	KeyToolName       = attribute.Key("gen_ai.tool.name")
	KeyToolCallID     = attribute.Key("gen_ai.tool.call.id")
	KeyMCPMethod      = attribute.Key("mcp.method.name")
	KeyMCPSession     = attribute.Key("mcp.session.id")
	KeyErrorType      = attribute.Key("error.type")
	KeyHTTPMethod     = attribute.Key("http.request.method")
	KeyHTTPRoute      = attribute.Key("http.route")
	KeyHTTPStatus     = attribute.Key("http.response.status_code")

	// KeyPoint is the enforcement point: api, mcp, proxy or token.
	KeyPoint = attribute.Key("writ.point")
	// KeyTaskID, KeyDecision (allow, deny, require_approval, error),
	// KeyDecisionID and KeyPolicyVersion describe the decision the span
	// made.
	KeyTaskID        = attribute.Key("writ.task_id")
	KeyDecision      = attribute.Key("writ.decision")
	KeyDecisionID    = attribute.Key("writ.decision_id")
	KeyPolicyVersion = attribute.Key("writ.policy_version")
	// KeyLedgerIndex is the ledger index of the record of the span's
	// decision (action.authorized, action.denied, policy.decided,
	// auth.rejected); KeyResultIndex that of the call's
	// action.completed. Either proves against a checkpoint with
	// 'writ ledger proof'.
	KeyLedgerIndex = attribute.Key("writ.ledger.index")
	KeyResultIndex = attribute.Key("writ.ledger.result_index")
)

// OpExecuteTool is gen_ai.operation.name of a tool call.
const OpExecuteTool = "execute_tool"

// Span is a span writ started, or the zero Span when tracing is off, whose
// methods then do nothing. Callers that would build attributes check On
// first, so that tracing off costs nothing.
type Span struct{ s trace.Span }

// On reports whether s records.
func (s Span) On() bool { return s.s != nil }

// Set sets attributes on s.
func (s Span) Set(kv ...attribute.KeyValue) {
	if s.s != nil {
		s.s.SetAttributes(kv...)
	}
}

// Fail marks s failed with error.type errType and a description, which
// must hold no secret.
func (s Span) Fail(errType, description string) {
	if s.s != nil {
		s.s.SetAttributes(KeyErrorType.String(errType))
		s.s.SetStatus(codes.Error, description)
	}
}

// End ends s.
func (s Span) End() {
	if s.s != nil {
		s.s.End()
	}
}

// FromContext returns the recording span ctx holds, or the zero Span: how
// the layers below an enforcement point (the decision, the ledger commit)
// add what they learn to its span.
func FromContext(ctx context.Context) Span {
	s := trace.SpanFromContext(ctx)
	if !s.IsRecording() {
		return Span{}
	}
	return Span{s}
}

// StartHTTP begins the server span of an HTTP request on route (its mux
// pattern), continuing the trace of the request's traceparent header.
func (t *Tracer) StartHTTP(r *http.Request, route string) (context.Context, Span) {
	if t == nil {
		return r.Context(), Span{}
	}
	parent := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	_, s := t.t.Start(parent, route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(KeyHTTPMethod.String(r.Method), KeyHTTPRoute.String(route)))
	return gather(parent, s)
}

// EndHTTP records the response's status on an HTTP span and ends it; a
// 5xx marks it failed (RFC 9110: the server's fault).
func EndHTTP(s Span, status int) {
	if s.s == nil {
		return
	}
	s.s.SetAttributes(KeyHTTPStatus.Int(status))
	if status >= 500 {
		s.s.SetAttributes(KeyErrorType.String(strconv.Itoa(status)))
		s.s.SetStatus(codes.Error, "")
	}
	s.s.End()
}

// Call names an MCP request or proxied call for StartCall.
type Call struct {
	// Point is the enforcement point: "mcp" or "proxy".
	Point string
	// Method is the MCP method (tools/call, resources/read…); empty for
	// the proxy.
	Method string
	// Tool is the tool as policy names it (server.tool for MCP); empty
	// for methods that call none.
	Tool string
	// Session is the MCP session ID, recorded only as a digest: it is a
	// handle on the agent's session, not for a trace backend to hold.
	Session string
	// Meta is the request's params._meta, whose traceparent comes
	// first; Header the HTTP request's, whose traceparent comes next.
	Meta   map[string]any
	Header http.Header
}

// StartCall begins the span of a call through the gateway or the proxy,
// continuing the caller's trace. A tool call is a GenAI execute_tool span
// named "execute_tool <tool>"; another MCP method is named after it
// ("tools/list", "prompts/get <tool>").
func (t *Tracer) StartCall(ctx context.Context, c Call) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	parent := propagator.Extract(ctx, metaCarrier(c.Meta))
	if !trace.SpanContextFromContext(parent).IsValid() && c.Header != nil {
		parent = propagator.Extract(ctx, propagation.HeaderCarrier(c.Header))
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, KeyPoint.String(c.Point))
	name := c.Method
	if c.Method == "" || c.Method == "tools/call" {
		name = OpExecuteTool + " " + c.Tool
		attrs = append(attrs, KeyGenAIOperation.String(OpExecuteTool))
	} else if c.Tool != "" {
		name += " " + c.Tool
	}
	if c.Tool != "" {
		attrs = append(attrs, KeyToolName.String(c.Tool))
	}
	if c.Method != "" {
		attrs = append(attrs, KeyMCPMethod.String(c.Method))
	}
	if c.Session != "" {
		attrs = append(attrs, KeyMCPSession.String(SessionDigest(c.Session)))
	}
	_, s := t.t.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return gather(parent, s)
}

// gather returns parent carrying s, a span just started, as a gathering
// span when it records.
func gather(parent context.Context, s trace.Span) (context.Context, Span) {
	if s.IsRecording() {
		s = &gathering{Span: s}
	}
	return trace.ContextWithSpan(parent, s), Span{s}
}

// gathering is a recording span whose attributes are gathered here and
// given to the SDK's span in one call when it ends. The SDK grows a
// span's attributes at each call (by append's rule: a decision's span,
// which learns its attributes in four steps, was copied four times into
// 2.5 KB, where its dozen attributes take 0.9 KB). The span exported is
// the same: its attributes in the order they were set, its status and
// events as they were given.
type gathering struct {
	trace.Span
	mu    sync.Mutex
	ended bool
	// attrs are the attributes set, in buf while they fit.
	attrs []attribute.KeyValue
	buf   *attrBuf
}

// attrBuf holds a span's attributes until it ends (a decision's span sets
// a dozen); the buffers are used again, since the SDK's span copies them.
type attrBuf [16]attribute.KeyValue

var attrBufs = sync.Pool{New: func() any { return new(attrBuf) }}

func (g *gathering) SetAttributes(kv ...attribute.KeyValue) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended || len(kv) == 0 {
		return // as the SDK's span, once ended
	}
	if g.buf == nil {
		g.buf = attrBufs.Get().(*attrBuf)
		g.attrs = g.buf[:0]
	}
	g.attrs = append(g.attrs, kv...)
}

func (g *gathering) End(opts ...trace.SpanEndOption) {
	g.mu.Lock()
	attrs, buf := g.attrs, g.buf
	g.ended, g.attrs, g.buf = true, nil, nil
	g.mu.Unlock()
	if len(attrs) > 0 {
		g.Span.SetAttributes(attrs...)
	}
	if buf != nil {
		clear(buf[:])
		attrBufs.Put(buf)
	}
	g.Span.End(opts...)
}

// SessionDigest is how a session ID appears in spans: the first 16 bytes
// of its SHA-256, in hex. Spans of one session share it; it opens nothing.
func SessionDigest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// WithSpanOf returns dst carrying src's span context, when src has one:
// for work that outlives or is detached from src's request (a call
// upstream with a timeout of its own) but belongs to its trace.
func WithSpanOf(dst, src context.Context) context.Context {
	sc := trace.SpanContextFromContext(src)
	if !sc.IsValid() {
		return dst
	}
	return trace.ContextWithSpanContext(dst, sc)
}
