package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/writhq/writ/internal/tracing"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		name     string
		endpoint string
		env      map[string]string
		want     bool
	}{
		{"nothing set", "", nil, false},
		{"file", "http://127.0.0.1:4318", nil, true},
		{"environment", "", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{"traces environment", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{"disabled", "http://127.0.0.1:4318", map[string]string{"OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", "http://127.0.0.1:4318", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{"disabled false", "http://127.0.0.1:4318", map[string]string{"OTEL_SDK_DISABLED": "false"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tracing.Config{Endpoint: c.endpoint, Getenv: func(k string) string { return c.env[k] }}
			if got := cfg.Enabled(); got != c.want {
				t.Errorf("Enabled() = %v, want %v", got, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	half, two := 0.5, 2.0
	for _, c := range []struct {
		cfg tracing.Config
		ok  bool
	}{
		{tracing.Config{}, true},
		{tracing.Config{Endpoint: "https://otel.example:4318/custom/path", SampleRatio: &half}, true},
		{tracing.Config{Endpoint: "otel.example:4318"}, false},
		{tracing.Config{Endpoint: "ftp://otel.example"}, false},
		{tracing.Config{SampleRatio: &two}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", c.cfg, err, c.ok)
		}
	}
}

// TestOffCostsNothing: with tracing off nothing is allocated on a call's
// path.
func TestOffCostsNothing(t *testing.T) {
	var tr *tracing.Tracer
	ctx := context.Background()
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	r := httptest.NewRequest(http.MethodPost, "/v1/authorize", nil)
	n := testing.AllocsPerRun(100, func() {
		_, span := tr.StartCall(ctx, tracing.Call{Point: "mcp", Method: "tools/call", Tool: "up.echo", Header: h})
		span.End()
		_, span = tr.StartHTTP(r, "POST /v1/authorize")
		tracing.EndHTTP(span, 200)
		if tracing.FromContext(ctx).On() {
			t.Fatal("a span in a plain context")
		}
	})
	if n != 0 {
		t.Errorf("%v allocations with tracing off, want 0", n)
	}
}

// TestSpans: spans reach a real OTLP receiver, as children of the
// caller's traceparent from _meta before the header, and inject writ's
// own span context onward.
func TestSpans(t *testing.T) {
	rec := otlptest.Start(t)
	tr, err := tracing.New(context.Background(), tracing.Config{Endpoint: rec.URL, Getenv: func(string) string { return "" }})
	if err != nil || tr == nil {
		t.Fatalf("New: %v, %v", tr, err)
	}
	defer tr.Shutdown(context.Background())
	meta := map[string]any{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	header := http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	ctx, span := tr.StartCall(context.Background(), tracing.Call{Point: "mcp", Method: "tools/call", Tool: "up.echo",
		Session: "session-secret", Meta: meta, Header: header})
	out := tracing.InjectMeta(ctx, nil)
	h := http.Header{}
	tracing.Inject(ctx, h)
	span.End()
	_, span2 := tr.StartCall(context.Background(), tracing.Call{Point: "mcp", Method: "resources/read", Header: header})
	span2.Fail("-32011", "JSON-RPC error -32011")
	span2.End()

	got := rec.Await(t, tr.Flush, "execute_tool up.echo", 1)[0]
	if got.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got.ParentSpanID != "00f067aa0ba902b7" {
		t.Errorf("span %s under %s: want _meta's parent", got.TraceID, got.ParentSpanID)
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + got.SpanID + "-01"
	if out["traceparent"] != want || h.Get("Traceparent") != want {
		t.Errorf("injected %v and %q, want %s", out, h.Get("Traceparent"), want)
	}
	if got.Attrs["mcp.session.id"] != tracing.SessionDigest("session-secret") || got.Attrs["mcp.session.id"] == "session-secret" {
		t.Errorf("mcp.session.id %q", got.Attrs["mcp.session.id"])
	}
	read := rec.Await(t, tr.Flush, "resources/read", 1)[0]
	if read.TraceID != "0af7651916cd43dd8448eb211c80319c" || read.Attrs["error.type"] != "-32011" || read.Attrs["gen_ai.operation.name"] != "" {
		t.Errorf("resources/read span %+v", read)
	}
}

// FuzzStartCall: whatever a caller puts in traceparent, a span starts and
// what goes upstream is writ's own well-formed traceparent.
func FuzzStartCall(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=00f067aa0ba902b7")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ",,,=")
	f.Add("", "")
	rec := otlptest.Start(f)
	tr, err := tracing.New(context.Background(), tracing.Config{Endpoint: rec.URL, Getenv: func(string) string { return "" }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Shutdown(context.Background()) })
	f.Fuzz(func(t *testing.T, tp, ts string) {
		ctx, span := tr.StartCall(context.Background(), tracing.Call{Point: "mcp", Method: "tools/call", Tool: "t",
			Meta: map[string]any{"traceparent": tp, "tracestate": ts}, Header: http.Header{"Traceparent": {tp}}})
		defer span.End()
		out := tracing.InjectMeta(ctx, nil)
		s, _ := out["traceparent"].(string)
		if len(s) != 55 || s[:3] != "00-" {
			t.Fatalf("upstream traceparent %q for %q", s, tp)
		}
	})
}

func BenchmarkStartCall(b *testing.B) {
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	c := tracing.Call{Point: "proxy", Tool: "tracker.issues", Header: h}
	b.Run("off", func(b *testing.B) {
		var tr *tracing.Tracer
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.StartCall(context.Background(), c)
			span.End()
		}
	})
	b.Run("on", func(b *testing.B) {
		rec := otlptest.Start(b)
		tr, err := tracing.New(context.Background(), tracing.Config{Endpoint: rec.URL, Getenv: func(string) string { return "" }})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Shutdown(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.StartCall(context.Background(), c)
			span.End()
		}
	})
}
