package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server/servertest"
)

// limitedServer starts a dev server whose rate limits mut changes.
func limitedServer(t *testing.T, mut func(*config.RateLimitsConfig)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	mut(&cfg.RateLimits)
	ts := serve(t, cfg)
	ts.token = devToken(t, dir, identity.RoleAdmin, identity.RoleAuditor)
	return ts
}

// statusOf sends a request and returns its status, for many goroutines.
func statusOf(method, u, authz string, body []byte) (int, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func rateStats(t *testing.T, ts *testServer) abuse.Stats {
	t.Helper()
	return decodeAs[abuse.Stats](t, ts.get(t, "/v1/rate-limits"))
}

// rejected returns the auth.rejected events of a stopped server.
func rejected(t *testing.T, dir string) (one []ledger.Event, summaries []abuse.Summary) {
	t.Helper()
	for _, e := range readEvents(t, dir) {
		if e.Type != ledger.TypeAuthRejected {
			continue
		}
		var s abuse.Summary
		if json.Unmarshal(e.Data, &s) == nil && s.Reason == abuse.ReasonSummary {
			summaries = append(summaries, s)
		} else {
			one = append(one, e)
		}
	}
	return one, summaries
}

// TestAnonymousFloodWritesNothing: requests that present no credential, to
// every kind of endpoint, are counted and, past the address's burst,
// answered 429; not one of them is written to the ledger.
func TestAnonymousFloodWritesNothing(t *testing.T) {
	const burst, n = 40, 400
	ts := limitedServer(t, func(c *config.RateLimitsConfig) {
		c.Unauthenticated = config.Rate{PerSecond: 0.0001, Burst: burst}
	})
	targets := []struct{ method, path string }{
		{"GET", "/v1/tasks"}, {"POST", "/v1/authorize"}, {"GET", "/ledger/checkpoint"},
		{"POST", "/v1/ledger/events"}, {"POST", "/proxy/none/x"}, {"GET", "/ui/login"},
	}
	counts := map[int]int{}
	for i := range n {
		tg := targets[i%len(targets)]
		st, err := statusOf(tg.method, ts.url+tg.path, "", []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		counts[st]++
	}
	if counts[http.StatusTooManyRequests] != n-burst {
		t.Errorf("statuses %v: want exactly %d answered 429", counts, n-burst)
	}
	s := rateStats(t, ts)
	if s.LimitedUnauthenticated != n-burst || s.NoCredentials == 0 || s.Recorded != 0 {
		t.Errorf("stats %+v", s.Counters)
	}
	for range 20 {
		if st, _ := statusOf("GET", ts.url+"/healthz", "", nil); st != http.StatusOK {
			t.Fatalf("/healthz answered %d: health checks are not limited", st)
		}
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	// The exact bound for this configuration: nothing.
	if one, sums := rejected(t, ts.dir); len(one)+len(sums) != 0 {
		t.Errorf("an anonymous flood of %d wrote %d auth.rejected events and %d summaries, want none", n, len(one), len(sums))
	}
}

// TestForgedTokenFloodIsSummarized: forged credentials are evidence: the
// first K from a source in an interval are recorded one by one, whatever
// checked them (identity middleware or task token check), the rest in one
// summary written when the interval ends, here at shutdown.
func TestForgedTokenFloodIsSummarized(t *testing.T) {
	const k, n = 5, 60
	ts := limitedServer(t, func(c *config.RateLimitsConfig) {
		c.Failed = config.Rate{} // off: every forged token reaches its check
		c.Rejections.PerSource = k
	})
	human := strings.Split(devToken(t, ts.dir, identity.RoleRequester), ".")
	forged := human[0] + "." + human[1] + "." + strings.Repeat("A", len(human[2]))
	for i := range n {
		path, body := "/v1/tasks", []byte(nil)
		if i%2 == 1 {
			path, body = "/v1/authorize", []byte(`{"tool":"x","operation":"read","resource":"x://y"}`)
		}
		method := "GET"
		if body != nil {
			method = "POST"
		}
		st, err := statusOf(method, ts.url+path, "Bearer "+forged, body)
		if err != nil || st != http.StatusUnauthorized {
			t.Fatalf("forged token %d: %d %v, want 401", i, st, err)
		}
	}
	if s := rateStats(t, ts); s.Recorded != k || s.Summarized != n-k {
		t.Errorf("stats %+v, want %d recorded and %d summarized", s.Counters, k, n-k)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	one, sums := rejected(t, ts.dir)
	if len(one) != k || len(sums) != 1 {
		t.Fatalf("%d auth.rejected recorded one by one and %d summaries, want %d and 1", len(one), len(sums), k)
	}
	s := sums[0]
	var total int64
	for _, c := range s.Reasons {
		total += c
	}
	if s.Count != n-k || total != n-k || s.Recorded != k || s.Source != "127.0.0.1" || s.First.After(s.Last) {
		t.Errorf("summary %+v, want %d refusals from 127.0.0.1", s, n-k)
	}
}

// TestRateLimitAnswers: 429 with Retry-After and the JSON error body at the
// API, the OAuth shape at the token endpoint.
func TestRateLimitAnswers(t *testing.T) {
	ts := limitedServer(t, func(c *config.RateLimitsConfig) {
		c.Unauthenticated = config.Rate{PerSecond: 0.001, Burst: 1}
		c.Failed = config.Rate{PerSecond: 0.001, Burst: 1}
	})
	do(t, "GET", ts.url+"/v1/tasks", "", nil)
	a := do(t, "GET", ts.url+"/v1/tasks", "", nil)
	if e := apiError(t, a); a.status != http.StatusTooManyRequests || e.Error != "rate_limited" {
		t.Errorf("anonymous past the burst: %d %s", a.status, a.body)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", a.header.Get("Retry-After"))
	}

	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {"not.a.jwt"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "scope": {"task:tsk_x"}}
	if a := exchange(t, ts, form, ""); a.status != http.StatusBadRequest {
		t.Fatalf("first bad exchange: %d %s", a.status, a.body)
	}
	a = exchange(t, ts, form, "")
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(a.body, &oe); err != nil || a.status != http.StatusTooManyRequests || oe.Error != "rate_limited" ||
		oe.Description == "" || a.header.Get("Retry-After") == "" {
		t.Errorf("token endpoint past the failed budget: %d %s %q", a.status, a.body, a.header.Get("Retry-After"))
	}
}

// TestPrincipalLimit: an authenticated principal past its bucket is
// answered 429; another principal from the same address is not.
func TestPrincipalLimit(t *testing.T) {
	ts := limitedServer(t, func(c *config.RateLimitsConfig) {
		c.Principal = config.Rate{PerSecond: 0.001, Burst: 4}
	})
	alice := devTokenFor(t, ts, "alice", "requester")
	a := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	b := openTask(t, ts, alice, agentB, invoiceScope("dev"), nil)
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}
	tokA := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), a.TaskID), "")).AccessToken
	for i := range 3 { // the exchange took one of agent A's four
		if r := authorize(t, ts, "Bearer "+tokA, "", in); r.status != http.StatusOK {
			t.Fatalf("call %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := authorize(t, ts, "Bearer "+tokA, "", in)
	if e := apiError(t, r); r.status != http.StatusTooManyRequests || e.Error != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Errorf("past the burst: %d %s", r.status, r.body)
	}
	tokB := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentB), b.TaskID), "")).AccessToken
	if r := authorize(t, ts, "Bearer "+tokB, "", in); r.status != http.StatusOK {
		t.Errorf("another agent: %d %s", r.status, r.body)
	}
	// Humans too: alice opened two tasks; two more requests, then 429.
	do(t, "GET", ts.url+"/v1/tasks", alice, nil)
	do(t, "GET", ts.url+"/v1/tasks", alice, nil)
	if r := do(t, "GET", ts.url+"/v1/tasks", alice, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("alice past her burst: %d %s", r.status, r.body)
	}
	if s := rateStats(t, ts); s.LimitedPrincipal != 2 {
		t.Errorf("limited_principal = %d, want 2", s.LimitedPrincipal)
	}
}

// TestHeavyClientNotThrottled: at the default limits, 64 clients from one
// address with one valid token, as the load benchmarks run, are never
// answered 429.
func TestHeavyClientNotThrottled(t *testing.T) {
	const clients, calls = 64, 5000
	dir := t.TempDir()
	cfg := servertest.Dev(dir, "dev")
	// Two shared cores: a starved evaluation past the default 50ms would
	// deny, which is not what this test is about.
	cfg.Policy.Timeout = 5 * time.Second
	ts := serve(t, cfg)
	alice := devTokenFor(t, ts, "alice", "requester")
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	token := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	body := mustJSONTB(t, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"})
	var next, ok, limited, other atomic.Int64
	var mu sync.Mutex
	var otherWhy []string
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= calls {
				st, err := statusOf("POST", ts.url+"/v1/authorize", "Bearer "+token, body)
				switch {
				case err == nil && st == http.StatusOK:
					ok.Add(1)
				case st == http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
					mu.Lock()
					otherWhy = append(otherWhy, fmt.Sprint(st, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != calls || limited.Load() != 0 {
		t.Errorf("%d allowed, %d answered 429, %d other (%q), of %d calls; want all allowed", ok.Load(), limited.Load(), other.Load(), otherWhy, calls)
	}
}
