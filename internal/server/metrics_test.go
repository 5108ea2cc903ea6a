package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// scrape fetches url with token (none when empty) and parses it with
// Prometheus's own text parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// sample returns the value of the series of family name whose labels
// include want ("k=v" pairs), and whether there is one. A histogram's
// value is its count.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func mustSample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := sample(fams, name, want...)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

func TestMetricsAuth(t *testing.T) {
	cfg := servertest.Dev(t.TempDir(), "dev")
	cfg.Metrics.Listen = "127.0.0.1:0"
	ts := serve(t, cfg)
	requester := devTokenFor(t, ts, "alice", identity.RoleRequester)
	auditor := devTokenFor(t, ts, "audrey", identity.RoleAuditor)
	admin := devTokenFor(t, ts, "root", identity.RoleAdmin)
	for _, c := range []struct {
		name, url, token string
		want             int
	}{
		{"no token", ts.url + "/metrics", "", http.StatusUnauthorized},
		{"requester", ts.url + "/metrics", requester, http.StatusForbidden},
		{"auditor", ts.url + "/metrics", auditor, http.StatusOK},
		{"admin", ts.url + "/metrics", admin, http.StatusOK},
		{"metrics.listen, no token", "http://" + ts.srv.MetricsAddr() + "/metrics", "", http.StatusOK},
		{"metrics.listen, another path", "http://" + ts.srv.MetricsAddr() + "/v1/tasks", "", http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.MethodGet, c.url, c.token, nil)
			if a.status != c.want {
				t.Fatalf("GET %s: %d %s, want %d", c.url, a.status, a.body, c.want)
			}
		})
	}
	fams := scrape(t, "http://"+ts.srv.MetricsAddr()+"/metrics", "")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes",
		"writ_ledger_size", "writ_tasks_active", "writ_approvals_pending", "writ_actions_in_flight", "writ_rate_limited_total",
		"writ_decisions_total", "writ_ledger_commit_duration_seconds", "writ_ledger_commit_batch_events"} {
		if fams[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}
	// Every enforcement point's series exist from the start.
	for _, p := range []string{"api", "mcp", "proxy", "token"} {
		if v, ok := sample(fams, "writ_decisions_total", "point="+p, "outcome=allow"); !ok || v != 0 {
			t.Errorf("writ_decisions_total{point=%q,outcome=allow} = %v, %v; want 0 from the start", p, v, ok)
		}
	}
}

func TestMetricsMove(t *testing.T) {
	ts, tok := startTaskServer(t, "dev")
	url := ts.url + "/metrics"
	before := scrape(t, url, tok["auditor"])
	size0 := mustSample(t, before, "writ_ledger_size")

	opened := openTask(t, ts, tok["alice"], agentA, invoiceScope("dev"), nil)
	access := tokenOf(t, exchange(t, ts, exchangeForm(svid(t, ts, agentA), opened.TaskID), "")).AccessToken
	// A refused exchange: the agent names a task that is not its own.
	if a := exchange(t, ts, exchangeForm(svid(t, ts, agentB), opened.TaskID), ""); a.status == http.StatusOK {
		t.Fatalf("another agent's exchange: %d", a.status)
	}
	allowed := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17", DataClass: "confidential"}
	for range 3 {
		if a := authorize(t, ts, "Bearer "+access, "", allowed); a.status != http.StatusOK {
			t.Fatalf("authorize: %d %s", a.status, a.body)
		}
	}
	denied := allowed
	denied.Tool = "mail.send"
	if a := authorize(t, ts, "Bearer "+access, "", denied); a.status != http.StatusForbidden {
		t.Fatalf("authorize outside scope: %d %s", a.status, a.body)
	}
	if a := do(t, http.MethodGet, ts.url+"/v1/tasks/"+opened.TaskID, tok["alice"], nil); a.status != http.StatusOK {
		t.Fatalf("get task: %d", a.status)
	}

	after := scrape(t, url, tok["auditor"])
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"writ_decisions_total", []string{"point=api", "outcome=allow"}, 3},
		{"writ_decisions_total", []string{"point=api", "outcome=deny"}, 1},
		{"writ_decisions_total", []string{"point=token", "outcome=allow"}, 1},
		{"writ_decisions_total", []string{"point=token", "outcome=deny"}, 1},
		{"writ_decisions_total", []string{"point=mcp", "outcome=allow"}, 0},
		{"writ_http_requests_total", []string{"route=POST /v1/authorize", "code=200"}, 3},
		{"writ_http_requests_total", []string{"route=POST /v1/authorize", "code=403"}, 1},
		{"writ_http_request_duration_seconds", []string{"route=POST /v1/authorize", "code=200"}, 3},
		{"writ_http_requests_total", []string{"route=GET /v1/tasks/{id}", "code=200"}, 1},
		{"writ_tasks_active", nil, 1},
		{"writ_approvals_pending", nil, 0},
		// The three calls allowed report no result: in flight, in memory.
		{"writ_actions_in_flight", []string{"held=memory"}, 3},
		{"writ_actions_in_flight", []string{"held=store"}, 0},
	} {
		if got := mustSample(t, after, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Routes are patterns, never raw paths: no series names the task.
	for _, m := range after["writ_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), opened.TaskID) {
				t.Errorf("a series names the task id: %v", m.GetLabel())
			}
		}
	}
	// The ledger grew by what was recorded, and each commit was timed.
	if size := mustSample(t, after, "writ_ledger_size"); size < size0+6 {
		t.Errorf("writ_ledger_size %v after %v and six records at least", size, size0)
	}
	commits := mustSample(t, after, "writ_ledger_commit_duration_seconds")
	if commits <= mustSample(t, before, "writ_ledger_commit_duration_seconds") {
		t.Errorf("writ_ledger_commit_duration_seconds count did not move: %v", commits)
	}
	if n := mustSample(t, after, "writ_ledger_commit_batch_events"); n < 1 || n > commits {
		t.Errorf("writ_ledger_commit_batch_events count %v, commits %v", n, commits)
	}
	// SQLite has no head lock: its series stay empty.
	for _, name := range []string{"writ_ledger_lock_wait_seconds", "writ_ledger_lock_held_seconds"} {
		if n := mustSample(t, after, name); n != 0 {
			t.Errorf("%s count %v on SQLite, want 0", name, n)
		}
	}

	// Pending approvals and active tasks follow the state.
	if a := do(t, http.MethodPost, ts.url+"/v1/tasks/"+opened.TaskID+"/complete", tok["alice"], nil); a.status != http.StatusOK {
		t.Fatalf("complete: %d %s", a.status, a.body)
	}
	ended := scrape(t, url, tok["auditor"])
	if got := mustSample(t, ended, "writ_tasks_active"); got != 0 {
		t.Errorf("writ_tasks_active = %v after the task completed, want 0", got)
	}
	// Their results may still come until the task's credentials expire.
	if got := mustSample(t, ended, "writ_actions_in_flight", "held=memory"); got != 3 {
		t.Errorf("writ_actions_in_flight{held=memory} = %v after the task completed, want 3", got)
	}
}

func TestMetricsPendingApprovals(t *testing.T) {
	ts, tok := startTaskServer(t, "prod")
	for i := range 2 {
		if o := openTask(t, ts, tok["alice"], agentA, invoiceScope("prod"), nil); o.State != api.StatePendingApproval {
			t.Fatalf("task %d: %s, want pending_approval", i, o.State)
		}
	}
	if got := mustSample(t, scrape(t, ts.url+"/metrics", tok["auditor"]), "writ_approvals_pending"); got != 2 {
		t.Errorf("writ_approvals_pending = %v, want 2", got)
	}
}

// TestMetricsRateLimited: answers of 429 are counted by bucket.
func TestMetricsRateLimited(t *testing.T) {
	cfg := servertest.Dev(t.TempDir(), "dev")
	cfg.RateLimits.Unauthenticated.PerSecond = 0.01
	cfg.RateLimits.Unauthenticated.Burst = 1
	ts := serve(t, cfg)
	auditor := devTokenFor(t, ts, "audrey", identity.RoleAuditor)
	limited := 0
	for range 5 {
		if a := do(t, http.MethodGet, ts.url+"/v1/tasks", "", nil); a.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
	fams := scrape(t, ts.url+"/metrics", auditor)
	if got := mustSample(t, fams, "writ_rate_limited_total", "bucket=unauthenticated"); got != float64(limited) {
		t.Errorf("writ_rate_limited_total{bucket=unauthenticated} = %v, want %d", got, limited)
	}
	if got := mustSample(t, fams, "writ_http_requests_total", "route=unmatched", "code=429"); got < float64(limited) {
		t.Errorf("429s counted %v, want %d", got, limited)
	}
}

// TestMetricsSequenced: a server on the shared PostgreSQL store counts how
// it sequenced its batches, one round trip or two; one on SQLite, which
// has no such choice, has no such series.
func TestMetricsSequenced(t *testing.T) {
	cfg := postgresConfig(t, pgtest.DSN(t), t.TempDir())
	cfg.Metrics.Listen = "127.0.0.1:0"
	ts := startPostgres(t, cfg)
	// Records of its own start, and of a dev token's identity, at least.
	devTokenFor(t, ts, "alice", identity.RoleRequester)
	fams := scrape(t, "http://"+ts.srv.MetricsAddr()+"/metrics", "")
	ahead, locked := mustSample(t, fams, "writ_ledger_sequenced_total", "how=ahead"), mustSample(t, fams, "writ_ledger_sequenced_total", "how=locked")
	mustSample(t, fams, "writ_ledger_sequenced_total", "how=refused")
	if ahead+locked < 1 {
		t.Errorf("writ_ledger_sequenced_total: %v ahead, %v locked after the server's first records", ahead, locked)
	}

	lite := servertest.Dev(t.TempDir(), "dev")
	lite.Metrics.Listen = "127.0.0.1:0"
	if fams := scrape(t, "http://"+serve(t, lite).srv.MetricsAddr()+"/metrics", ""); fams["writ_ledger_sequenced_total"] != nil {
		t.Error("a SQLite server has writ_ledger_sequenced_total")
	}
}
