package abuse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

// memLedger records appended events.
type memLedger struct{ testkit.Recorder }

func (m *memLedger) summaries(t *testing.T) []Summary {
	t.Helper()
	var out []Summary
	for _, e := range m.Events() {
		var s Summary
		if err := json.Unmarshal(e.Data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Reason == ReasonSummary {
			out = append(out, s)
		}
	}
	return out
}

func newTestLimiter(t *testing.T, mut func(*config.RateLimitsConfig)) (*Limiter, *memLedger, *testkit.Clock) {
	t.Helper()
	cfg := config.DefaultRateLimits()
	if mut != nil {
		mut(&cfg)
	}
	rec := &memLedger{}
	clk := testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	l, err := New(cfg, Options{Recorder: rec, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l, rec, clk
}

// serve sends one request from addr through the middleware to a handler
// that answers 204, and returns the answer.
func serve(l *Limiter, addr, path string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = addr
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})).ServeHTTP(w, r)
	return w
}

func TestUnauthenticatedBucketRefillsAndAnswers429(t *testing.T) {
	l, _, clk := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.Unauthenticated = config.Rate{PerSecond: 0.5, Burst: 3}
	})
	for i := range 3 {
		if w := serve(l, "192.0.2.1:4000", "/v1/tasks", nil); w.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d, want 204 within the burst", i, w.Code)
		}
	}
	w := serve(l, "192.0.2.1:4001", "/v1/tasks", nil)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("past the burst: %d, want 429", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (one token at 0.5/s)", got)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "rate_limited" || body["detail"] == "" {
		t.Errorf("body %s (%v), want {error: rate_limited, detail}", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	// Another address has its own bucket; the health checks none.
	if w := serve(l, "192.0.2.2:4000", "/v1/tasks", nil); w.Code != http.StatusNoContent {
		t.Errorf("another address: %d", w.Code)
	}
	for range 10 {
		if w := serve(l, "192.0.2.1:4000", "/readyz", nil); w.Code != http.StatusNoContent {
			t.Fatalf("/readyz limited: %d", w.Code)
		}
	}
	clk.Add(2 * time.Second)
	if w := serve(l, "192.0.2.1:4000", "/v1/tasks", nil); w.Code != http.StatusNoContent {
		t.Errorf("after the refill: %d", w.Code)
	}
	if s := l.Stats(); s.LimitedUnauthenticated != 1 {
		t.Errorf("limited_unauthenticated = %d, want 1", s.LimitedUnauthenticated)
	}
}

func TestFailedCredentialsCloseTheAddress(t *testing.T) {
	l, _, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.Failed = config.Rate{PerSecond: 0.1, Burst: 2}
	})
	authz := http.Header{"Authorization": {"Bearer forged"}}
	for i := range 2 {
		if w := serve(l, "198.51.100.7:1", "/v1/tasks", authz); w.Code != http.StatusNoContent {
			t.Fatalf("credential %d refused before its check: %d", i, w.Code)
		}
		ctx := WithSource(context.Background(), "198.51.100.7")
		l.Reject(ctx, "bad_signature", func(context.Context) error { return nil })
	}
	w := serve(l, "198.51.100.7:1", "/v1/tasks", authz)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("after two refusals: %d Retry-After %q, want 429 and 10", w.Code, w.Header().Get("Retry-After"))
	}
	// At the token endpoint the refusal takes the OAuth shape.
	r := httptest.NewRequest(http.MethodPost, TokenPath, nil)
	r.RemoteAddr = "198.51.100.7:2"
	rw := httptest.NewRecorder()
	l.Middleware(http.NotFoundHandler()).ServeHTTP(rw, r)
	var body map[string]string
	json.Unmarshal(rw.Body.Bytes(), &body)
	if rw.Code != http.StatusTooManyRequests || body["error"] != "rate_limited" || body["error_description"] == "" {
		t.Errorf("token endpoint: %d %s, want 429 {error: rate_limited, error_description}", rw.Code, rw.Body)
	}
	// Requests without a credential are not in that bucket.
	if w := serve(l, "198.51.100.7:1", "/v1/tasks", nil); w.Code != http.StatusNoContent {
		t.Errorf("no credential: %d", w.Code)
	}
	l.Flush(context.Background())
	if s := l.Stats(); s.LimitedFailed != 2 || s.Summaries != 1 {
		t.Errorf("stats %+v, want 2 limited_failed and 1 summary of them", s.Counters)
	}
}

func TestPrincipalBucket(t *testing.T) {
	l, _, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.Principal = config.Rate{PerSecond: 1, Burst: 5}
	})
	admitted := 0
	for range 8 {
		w := httptest.NewRecorder()
		if l.Admit(w, httptest.NewRequest("GET", "/v1/authorize", nil), "spiffe://example.org/a") {
			admitted++
		} else if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("refusal %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
	}
	if admitted != 5 {
		t.Errorf("admitted %d of 8, want the burst of 5", admitted)
	}
	if !l.Admit(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "spiffe://example.org/b") {
		t.Error("another principal was refused")
	}
	// Off by default.
	d, _, _ := newTestLimiter(t, nil)
	for i := range 100_000 {
		if !d.Admit(httptest.NewRecorder(), nil, "p") {
			t.Fatalf("default principal limit refused request %d", i)
		}
	}
}

func TestRejectionsRecordThenSummarize(t *testing.T) {
	l, rec, clk := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.Rejections.PerSource = 3
	})
	ctx := WithSource(context.Background(), "203.0.113.5")
	writes := 0
	write := func(context.Context) error { writes++; return nil }
	first := clk.Now()
	for i := range 10 {
		reason := "bad_signature"
		if i%2 == 1 {
			reason = "expired"
		}
		if err := l.Reject(ctx, reason, write); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
	}
	for range 50 {
		l.Reject(ctx, NoCredentials, write)
	}
	if writes != 3 {
		t.Fatalf("recorded %d one by one, want 3", writes)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sums := rec.summaries(t)
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	s := sums[0]
	want := map[string]int64{"bad_signature": 3, "expired": 4}
	if s.Source != "203.0.113.5" || s.Count != 7 || s.Recorded != 3 || fmt.Sprint(s.Reasons) != fmt.Sprint(want) ||
		!s.First.Equal(first.Add(3*time.Second)) || !s.Last.Equal(first.Add(9*time.Second)) || s.Interval != "1m0s" {
		t.Errorf("summary %+v", s)
	}
	if e := rec.Events()[0]; e.Type != ledger.TypeAuthRejected || e.TaskID != "" {
		t.Errorf("summary event %+v", e)
	}
	// A new interval records one by one again; nothing past it: no summary.
	l.Reject(ctx, "expired", write)
	l.Flush(ctx)
	if writes != 4 || len(rec.summaries(t)) != 1 {
		t.Errorf("next interval: %d writes, %d summaries", writes, len(rec.summaries(t)))
	}
	if st := l.Stats(); st.NoCredentials != 50 || st.Recorded != 4 || st.Summarized != 7 {
		t.Errorf("stats %+v", st.Counters)
	}
}

// TestRecordFailuresAreCountedNotLost: a record that fails is counted and
// goes into the summary; a summary that fails is kept for the next
// interval; Close writes what is left, and reports when it cannot.
func TestRecordFailuresAreCountedNotLost(t *testing.T) {
	l, rec, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) { c.Rejections.PerSource = 1 })
	ctx := WithSource(context.Background(), "203.0.113.9")
	broken := errors.New("disk full")
	err := l.Reject(ctx, "bad_signature", func(context.Context) error { return broken })
	if !errors.Is(err, broken) {
		t.Fatalf("Reject = %v, want the record's error", err)
	}
	rec.Fail(broken)
	if err := l.Flush(ctx); !errors.Is(err, broken) {
		t.Fatalf("Flush = %v", err)
	}
	rec.Fail(nil)
	l.Reject(ctx, "expired", func(context.Context) error { return nil }) // recorded: the budget is free again
	l.Reject(ctx, "expired", func(context.Context) error { return nil }) // summarized
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sums := rec.summaries(t)
	if len(sums) != 1 || sums[0].Count != 2 || sums[0].Reasons["bad_signature"] != 1 || sums[0].Reasons["expired"] != 1 {
		t.Fatalf("summaries %+v, want one counting the failed record and the one past the budget", sums)
	}
	st := l.Stats()
	if st.RecordFailures != 1 || st.SummaryFailures != 1 || st.Summaries != 1 {
		t.Errorf("stats %+v", st.Counters)
	}

	l2, rec2, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) { c.Rejections.PerSource = 0 })
	l2.Reject(ctx, "bad_signature", func(context.Context) error { return nil })
	rec2.Fail(broken)
	if err := l2.Close(ctx); !errors.Is(err, broken) {
		t.Errorf("Close with the ledger down = %v, want its error", err)
	}
}

// TestMemoryBound: a flood of distinct addresses keeps at most max_keys
// buckets, the rest sharing one; refilled buckets are forgotten.
func TestMemoryBound(t *testing.T) {
	const maxKeys = 100
	l, _, clk := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.MaxKeys = maxKeys
		c.Unauthenticated = config.Rate{PerSecond: 1, Burst: 1}
		c.Rejections.MaxSources = maxKeys
	})
	limited := 0
	for i := range 5000 {
		addr := "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":1"
		if serve(l, addr, "/", nil).Code == http.StatusTooManyRequests {
			limited++
		}
		l.Reject(WithSource(context.Background(), addr), "bad_signature", func(context.Context) error { return nil })
	}
	st := l.Stats()
	if st.Keys.Unauthenticated != maxKeys || st.Keys.Failed != maxKeys || st.Keys.Sources != maxKeys+1 {
		t.Fatalf("keys %+v, want %d per class (and the overflow source)", st.Keys, maxKeys)
	}
	if limited < 5000-maxKeys-1 {
		t.Errorf("only %d of the addresses past the bound were limited by the shared bucket", limited)
	}
	// Once refilled, the buckets are forgotten as new addresses come.
	clk.Add(2 * time.Second)
	serve(l, "192.0.2.200:1", "/", nil)
	if n := l.unauth.size(); n != 1 {
		t.Errorf("after the refill %d keys, want 1", n)
	}
}

func TestIPv6SharesASlash64(t *testing.T) {
	l, _, _ := newTestLimiter(t, func(c *config.RateLimitsConfig) {
		c.Unauthenticated = config.Rate{PerSecond: 1, Burst: 2}
	})
	codes := []int{}
	for _, a := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::ffff]:1", "[2001:db8:1:2:aaaa::]:1", "[2001:db8:1:3::1]:1"} {
		codes = append(codes, serve(l, a, "/", nil).Code)
	}
	if fmt.Sprint(codes) != "[204 204 429 204]" {
		t.Errorf("codes %v, want one /64 to share a bucket", codes)
	}
}
