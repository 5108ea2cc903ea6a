package metrics_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rr.Code, rr.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the value of name's series whose labels are exactly labels.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(got, ",") != strings.Join(labels, ",") {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// handler is a mux with the middleware as writ stacks it: a layer that
// replaces the request between the recorder and the mux.
func handler(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			panic("the recorder hides http.Flusher")
		}
		w.Write([]byte("data: 1\n\n"))
		http.NewResponseController(w).Flush()
	})
	mux.HandleFunc("GET /abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	replace := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(w, r.WithContext(r.Context())) })
	}
	return m.Middleware(replace(metrics.Route(mux)))
}

func TestHTTPSeriesByRoute(t *testing.T) {
	m := metrics.New(metrics.Config{})
	h := handler(m)
	for _, path := range []string{"/v1/tasks/tsk_1", "/v1/tasks/tsk_2", "/stream", "/nowhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	func() {
		defer func() { recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/abort", nil))
	}()
	fams := scrape(t, m)
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"GET /v1/tasks/{id}", "404", 2},
		{"GET /stream", "200", 1},
		{"unmatched", "404", 1},
		{"GET /abort", "aborted", 1},
	} {
		if got, ok := value(fams, "writ_http_requests_total", "code="+c.code, "route="+c.route); !ok || got != c.want {
			t.Errorf("requests{route=%q,code=%s} = %v (%v), want %v", c.route, c.code, got, ok, c.want)
		}
		if got, _ := value(fams, "writ_http_request_duration_seconds", "code="+c.code, "route="+c.route); got != c.want {
			t.Errorf("duration{route=%q,code=%s} count = %v, want %v", c.route, c.code, got, c.want)
		}
	}
}

func TestDecisionsAndLedger(t *testing.T) {
	m := metrics.New(metrics.Config{Points: []string{"api", "mcp"}})
	m.Decision("api", metrics.Allow)
	m.Decision("api", metrics.Allow)
	m.Decision("mcp", metrics.RequireApproval)
	m.Decision("other", metrics.Error)
	m.ObserveCommit(ledger.CommitStats{Events: 3, Duration: 2 * time.Millisecond, Size: 10})
	m.ObserveCommit(ledger.CommitStats{Events: 5, Duration: time.Millisecond, Size: 10, Err: errors.New("disk full")})
	m.SinkLag("siem").Set(42)
	m.WitnessLag("w1").Set(7)
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"writ_decisions_total", []string{"outcome=allow", "point=api"}, 2},
		{"writ_decisions_total", []string{"outcome=deny", "point=api"}, 0},
		{"writ_decisions_total", []string{"outcome=require_approval", "point=mcp"}, 1},
		{"writ_decisions_total", []string{"outcome=error", "point=other"}, 1},
		{"writ_ledger_commit_duration_seconds", nil, 2},
		{"writ_ledger_commit_batch_events", nil, 1},
		{"writ_ledger_commit_failures_total", nil, 1},
		{"writ_ledger_size", nil, 10},
		{"writ_sink_lag_events", []string{"sink=siem"}, 42},
		{"writ_witness_lag_events", []string{"witness=w1"}, 7},
	} {
		if got, ok := value(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

// TestLedgerLock: a shared store's head lock waits and holds are
// observed; a commit on another store (no lock times) adds none.
func TestLedgerLock(t *testing.T) {
	m := metrics.New(metrics.Config{})
	m.ObserveCommit(ledger.CommitStats{Events: 3, Duration: 2 * time.Millisecond, Size: 10})
	m.ObserveCommit(ledger.CommitStats{Events: 4, Duration: 3 * time.Millisecond, Size: 14,
		LockWait: time.Millisecond, LockHeld: 2 * time.Millisecond})
	fams := scrape(t, m)
	for _, name := range []string{"writ_ledger_lock_wait_seconds", "writ_ledger_lock_held_seconds"} {
		if got, ok := value(fams, name); !ok || got != 1 {
			t.Errorf("%s count = %v (%v), want 1", name, got, ok)
		}
	}
}

// TestNilMetrics: parts built without metrics record nothing and do not
// fail.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.Decision("api", metrics.Allow)
	m.ObserveCommit(ledger.CommitStats{})
	m.SinkLag("s").Set(1)
	m.WitnessLag("w").Set(1)
	rr := httptest.NewRecorder()
	m.Middleware(http.NotFoundHandler()).ServeHTTP(rr, httptest.NewRequest("GET", "/", nil))
	if rr.Code != http.StatusNotFound {
		t.Errorf("nil metrics middleware answered %d", rr.Code)
	}
}

// TestRequestAllocations: counting a request of a known route and code
// allocates nothing beyond the recorder.
func TestRequestAllocations(t *testing.T) {
	m := metrics.New(metrics.Config{Points: []string{"api"}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := m.Middleware(metrics.Route(mux))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, req) }); n > 1 {
		t.Errorf("%v allocations per request, want at most 1 (the recorder)", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.Decision("api", metrics.Deny) }); n != 0 {
		t.Errorf("%v allocations per decision, want 0", n)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkMiddleware(b *testing.B) {
	m := metrics.New(metrics.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := m.Middleware(metrics.Route(mux))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
