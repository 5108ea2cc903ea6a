package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route labels of requests that matched no pattern, and of those whose
// handler aborted before any status was written.
const (
	routeUnmatched = "unmatched"
	codeAborted    = "aborted"
)

type routeCode struct {
	route string
	code  int
}

type httpSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Middleware counts and times every request next answers, by the mux
// pattern that routed it (never the raw path, so the series stay few) and
// the status code. The pattern is learnt by Route, which must wrap the
// ServeMux itself inside next.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		start := time.Now()
		done := false
		defer func() {
			code := rec.status
			if code == 0 && done {
				code = http.StatusOK // the server writes it for a handler that wrote nothing
			}
			m.observeHTTP(rec.route, code, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
		done = true
	})
}

// Route tells Middleware which pattern of mux routed each request: the
// mux sets it on the request it is given, which the layers between (that
// replace the request) would hide from Middleware.
func Route(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rec := findRecorder(w); rec != nil {
				rec.route = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

func (m *Metrics) observeHTTP(route string, code int, took time.Duration) {
	if route == "" {
		route = routeUnmatched
	}
	k := routeCode{route, code}
	m.httpMu.RLock()
	s, ok := m.httpSeries[k]
	m.httpMu.RUnlock()
	if !ok {
		c := codeAborted
		if code > 0 {
			c = strconv.Itoa(code)
		}
		s = httpSeries{count: m.httpRequests.WithLabelValues(route, c), duration: m.httpDuration.WithLabelValues(route, c)}
		m.httpMu.Lock()
		m.httpSeries[k] = s
		m.httpMu.Unlock()
	}
	s.count.Inc()
	s.duration.Observe(took.Seconds())
}

// recorder notes the status code and route of a response. It passes
// flushes and hijacks through (the MCP gateway streams, the proxy relays
// event streams), and unwraps for http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status int
	route  string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("metrics: the response does not support hijacking")
	}
	return h.Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// findRecorder finds Middleware's recorder in w or the writers it wraps.
func findRecorder(w http.ResponseWriter) *recorder {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// Status returns the status code written so far on a response that
// Middleware records (0 before any, or when w is not one).
func Status(w http.ResponseWriter) int {
	if rec := findRecorder(w); rec != nil {
		return rec.status
	}
	return 0
}
