// Package otlptest runs an OTLP/HTTP trace collector inside a test: it
// decodes what writ exports with the OpenTelemetry protocol's own
// protobuf types and keeps the spans for the test to check.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/writhq/writ/internal/testkit"
)

// Span is a received span, its identifiers in lowercase hex as they
// appear in a traceparent.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          tracepb.Span_SpanKind
	Attrs                         map[string]string
	StatusCode                    tracepb.Status_StatusCode
	// Resource and Scope are what the span was exported under.
	Resource map[string]string
	Scope    string
}

// Receiver is the collector.
type Receiver struct {
	// URL is its base URL; spans are posted to URL + "/v1/traces".
	URL string

	mu    sync.Mutex
	spans []Span
	errs  []error
}

// Start starts a receiver on a loopback port; it stops when the test
// ends, and a request it could not decode then fails the test.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errs {
			t.Errorf("otlptest: %v", err)
		}
	})
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.fail(fmt.Errorf("unexpected %s %s", req.Method, req.URL.Path))
		http.Error(w, "not an OTLP traces export", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail(fmt.Errorf("export with Content-Type %q, want application/x-protobuf", ct))
		http.Error(w, "want protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		r.fail(err)
		return
	}
	var ex coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &ex); err != nil {
		r.fail(fmt.Errorf("decoding an export: %v", err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range ex.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind(),
					Attrs: attrs(s.GetAttributes()), StatusCode: s.GetStatus().GetCode(), Resource: res,
					Scope: ss.GetScope().GetName(),
				})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (r *Receiver) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Named returns the received spans named name.
func (r *Receiver) Named(name string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs flattens attributes to strings: what a test compares.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(x.IntValue)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(x.DoubleValue)
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// Await flushes the exporter (flush) and waits, up to 30s, until n spans
// named name have arrived; it returns them, in the order received, or
// fails the test. A span ends when its handler returns, which can be
// after the caller has read the answer.
func (r *Receiver) Await(t testing.TB, flush func(context.Context) error, name string, n int) []Span {
	t.Helper()
	var got []Span
	testkit.Eventually(t, 30*time.Second, func() error {
		if err := flush(context.Background()); err != nil {
			return err
		}
		if got = r.Named(name); len(got) < n {
			return fmt.Errorf("%d spans named %q, want %d; all: %v", len(got), name, n, r.Spans())
		}
		return nil
	})
	return got
}
