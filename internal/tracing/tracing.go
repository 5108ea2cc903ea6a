// Package tracing is writ's OpenTelemetry instrumentation: spans for
// decision API calls, token exchanges and the tool calls of the MCP
// gateway and the HTTP proxy, exported over OTLP/HTTP, continuing the
// caller's W3C trace and passing it on to the upstream tools.
//
// Tracing is off unless an endpoint is configured (tracing.endpoint, or
// the standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// variables). Off, New returns a nil *Tracer, whose methods return at once
// with a zero Span: a nil check per call, nothing allocated, nothing
// parsed.
//
// Span attributes never hold a token, an argument, a result or any value
// redaction applies to: only names (tools, methods, routes), writ's own
// identifiers (task, decision, action, ledger index) and outcomes.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of writ's spans.
const ScopeName = "github.com/writhq/writ"

// Config configures tracing. The standard OTEL_* variables configure what
// it leaves unset (headers, timeout, compression, certificates, batching,
// sampler, resource attributes); where both set the same thing, the
// environment wins, as WRIT_* variables win over the file.
type Config struct {
	// Endpoint is the OTLP/HTTP collector: a URL whose path, when it has
	// none, becomes /v1/traces. Empty leaves it to the environment;
	// with neither, tracing is off.
	Endpoint string
	// ServiceName is the resource's service.name (default "writ";
	// OTEL_SERVICE_NAME wins).
	ServiceName string
	// SampleRatio, when set, samples that fraction of the traces writ
	// starts itself; a caller's sampling decision is always followed. Nil
	// leaves it to OTEL_TRACES_SAMPLER, or samples every trace.
	SampleRatio *float64
	// Version is the service.version of the resource.
	Version string
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
}

// Enabled reports whether cfg and the environment turn tracing on: an
// endpoint is set, and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none turns it off.
func (c Config) Enabled() bool {
	env := c.getenv()
	if strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(env("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return c.Endpoint != "" || env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

func (c Config) getenv() func(string) string {
	if c.Getenv == nil {
		return os.Getenv
	}
	return c.Getenv
}

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	if c.Endpoint != "" {
		if _, err := traceURL(c.Endpoint); err != nil {
			return err
		}
	}
	if r := c.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		return fmt.Errorf("tracing.sample_ratio %v: want 0 to 1", *r)
	}
	return nil
}

// traceURL is the URL spans are posted to for a configured endpoint.
func traceURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing.endpoint %q: want an http:// or https:// URL of an OTLP/HTTP collector", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Tracer starts writ's spans and exports them. A nil *Tracer is tracing
// off.
type Tracer struct {
	tp *sdktrace.TracerProvider
	t  trace.Tracer
}

// New starts tracing as cfg and the environment say, or returns nil when
// they leave it off. Nothing is sent until the first span ends; a
// collector that does not answer loses spans, never requests.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	env := cfg.getenv()
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" && env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		u, _ := traceURL(cfg.Endpoint)
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "writ"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Later detectors win: the environment's resource attributes and
	// OTEL_SERVICE_NAME over writ's defaults.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	popts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if r := cfg.SampleRatio; r != nil {
		popts = append(popts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*r))))
	}
	tp := sdktrace.NewTracerProvider(popts...)
	return &Tracer{tp: tp, t: tp.Tracer(ScopeName)}, nil
}

// Enabled reports whether t traces.
func (t *Tracer) Enabled() bool { return t != nil }

// Flush exports the spans that have ended and waits for the collector.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Shutdown exports what is left and stops. It waits at most until ctx is
// done, and no longer than 5s.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return t.tp.Shutdown(ctx)
}

// propagator reads and writes W3C Trace Context (traceparent and
// tracestate), in HTTP headers and in MCP's params._meta alike.
var propagator = propagation.TraceContext{}

// Inject writes ctx's span context into h as traceparent and tracestate,
// replacing the caller's: the upstream's parent is writ's span. It does
// nothing when ctx holds no span.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// InjectMeta is Inject for an MCP request's params._meta (SEP-414: the
// keys unprefixed). It returns m, made when nil and there is a span.
func InjectMeta(ctx context.Context, m map[string]any) map[string]any {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return m
	}
	if m == nil {
		m = map[string]any{}
	}
	propagator.Inject(ctx, metaCarrier(m))
	return m
}

// metaCarrier reads and writes trace context in MCP's _meta.
type metaCarrier map[string]any

func (m metaCarrier) Get(key string) string {
	s, _ := m[key].(string)
	return s
}

func (m metaCarrier) Set(key, value string) { m[key] = value }

func (m metaCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
