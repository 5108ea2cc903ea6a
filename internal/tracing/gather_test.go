package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestGatheredAsSet: a span whose attributes writ gathers ends as the
// SDK's span would have, had each call gone to it: the same attributes in
// the same order (keys set twice included, and those dropped past a
// lowered attribute count limit), status, and nothing set after its end.
func TestGatheredAsSet(t *testing.T) {
	for _, limit := range []int{sdktrace.DefaultAttributeCountLimit, 9, 4} {
		exp := tracetest.NewInMemoryExporter()
		limits := sdktrace.NewSpanLimits()
		limits.AttributeCountLimit = limit
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithRawSpanLimits(limits))
		defer tp.Shutdown(context.Background())
		tr := &Tracer{tp: tp, t: tp.Tracer(ScopeName)}
		steps := func(set func(...attribute.KeyValue), end func()) {
			set(KeyLedgerIndex.Int64(7), KeyTaskID.String("tsk_1"), KeyPolicyVersion.String("sha256:aaaa"))
			set(KeyPoint.String("api"), KeyToolName.String("invoices.read"), KeyTaskID.String("tsk_2"),
				KeyDecision.String("allow"), KeyDecisionID.String("dec_1"), KeyToolCallID.String("act_1"))
			for i := range 20 { // past what the span holds in place
				set(attribute.Int("n", i), attribute.Int("n"+strconv.Itoa(i%3), i))
			}
			end()
			set(KeyErrorType.String("late"))
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/authorize", nil)
		ctx, span := tr.StartHTTP(r, "POST /v1/authorize")
		if _, ok := trace.SpanFromContext(ctx).(*gathering); !ok {
			t.Fatalf("the request's context holds a %T", trace.SpanFromContext(ctx))
		}
		steps(FromContext(ctx).Set, func() { EndHTTP(span, http.StatusBadGateway) })

		_, direct := tp.Tracer(ScopeName).Start(context.Background(), "POST /v1/authorize", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(KeyHTTPMethod.String(http.MethodPost), KeyHTTPRoute.String("POST /v1/authorize")))
		steps(direct.SetAttributes, func() { EndHTTP(Span{direct}, http.StatusBadGateway) })

		spans := exp.GetSpans()
		if len(spans) != 2 {
			t.Fatalf("%d spans exported", len(spans))
		}
		got, want := spans[0], spans[1]
		if diff := cmp.Diff(want.Attributes, got.Attributes, cmp.Comparer(func(a, b attribute.Value) bool { return a == b })); diff != "" {
			t.Errorf("limit %d: attributes (-the SDK's span +gathered):\n%s", limit, diff)
		}
		if got.Status != want.Status || got.SpanKind != want.SpanKind || got.Name != want.Name || got.DroppedAttributes != want.DroppedAttributes {
			t.Errorf("limit %d: gathered %+v, the SDK's %+v", limit, got, want)
		}
	}
}

// discard is an exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkGathered is a decision's span on the request's path (started,
// given its attributes in four steps, ended and handed to a processor
// that drops it), with its attributes gathered and, for comparison, each
// step given to the SDK's span (per op: one span).
//
//	go test ./internal/tracing -run '^$' -bench Gathered -count 3
func BenchmarkGathered(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(discard{})))
	defer tp.Shutdown(context.Background())
	tr := &Tracer{tp: tp, t: tp.Tracer(ScopeName)}
	r := httptest.NewRequest(http.MethodPost, "/v1/authorize", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	steps := func(s Span) {
		s.Set(KeyLedgerIndex.Int64(7), KeyTaskID.String("tsk_1"), KeyPolicyVersion.String("sha256:aaaa"))
		s.Set(KeyPoint.String("api"), KeyToolName.String("invoices.read"), KeyTaskID.String("tsk_1"),
			KeyDecision.String("allow"), KeyDecisionID.String("dec_1"), KeyToolCallID.String("act_1"))
		EndHTTP(s, http.StatusOK)
	}
	b.Run("gathered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, _ := tr.StartHTTP(r, "POST /v1/authorize")
			steps(FromContext(ctx))
		}
	})
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parent := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, _ := tr.t.Start(parent, "POST /v1/authorize", trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(KeyHTTPMethod.String(r.Method), KeyHTTPRoute.String("POST /v1/authorize")))
			steps(FromContext(ctx))
		}
	})
}
