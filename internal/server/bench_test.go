package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/tracing/otlptest"
)

// BenchmarkAuthorizeHTTP measures POST /v1/authorize end to end on a real
// server (default Rego pack, durable SQLite ledger, loopback HTTP): each
// allowed call is decided by policy and its action.authorized event is
// durable before the answer. It reports throughput and latency percentiles
// for 1 and 64 concurrent clients, which share the machine with the server.
//
//	go test ./internal/server -run '^$' -bench AuthorizeHTTP -benchtime 20000x
func BenchmarkAuthorizeHTTP(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchAuthorize(b, clients)
		})
	}
}

// BenchmarkAuthorizeTracing is BenchmarkAuthorizeHTTP with tracing off
// and on (every call's span exported over OTLP/HTTP to a collector in the
// benchmark's process, sampling everything); metrics are on in both.
//
//	go test ./internal/server -run '^$' -bench AuthorizeTracing -benchtime 20000x
func BenchmarkAuthorizeTracing(b *testing.B) {
	for _, tracing := range []bool{false, true} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("tracing=%v/clients=%d", tracing, clients), func(b *testing.B) {
				cfg := benchConfig(b.TempDir())
				// A loaded machine can take longer than the default 50ms to
				// evaluate, which would deny: not what this measures.
				cfg.Policy.Timeout = 10 * time.Second
				if tracing {
					cfg.Tracing.Endpoint = otlptest.Start(b).URL
				}
				loadAuthorize(b, []*testServer{serve(b, cfg)}, clients)
			})
		}
	}
}

// benchConfig is the configuration of a dev server in dir for a
// benchmark: it logs only errors.
func benchConfig(dir string) config.Config {
	cfg := servertest.Dev(dir, "dev")
	cfg.Log.Level = "error"
	return cfg
}

func benchAuthorize(b *testing.B, clients int) {
	cfg := benchConfig(b.TempDir())
	loadAuthorize(b, []*testServer{serve(b, cfg)}, clients)
}

// loadAuthorize opens a task on the first server, takes its token, and has
// clients send b.N allowed calls round-robin over servers; it reports
// throughput and the p50 and p99 latency, and fails on any call not
// allowed.
func loadAuthorize(b *testing.B, servers []*testServer, clients int) {
	// As writ server runs (the servers here share the benchmark's process).
	defer server.TuneGC()()
	ts := servers[0]
	alice := devTokenFor(b, ts, "alice", identity.RoleRequester)
	a := postWithToken(b, ts, "/v1/tasks", "Bearer "+alice, "", mustJSONTB(b, api.OpenTask{Agent: agentA, Intent: "benchmark",
		Scope: invoiceScope("dev"), TTL: "1h"}))
	if a.status != http.StatusCreated {
		b.Fatalf("open: %d %s", a.status, a.body)
	}
	var opened api.TaskOpened
	jsonDecode(b, a.body, &opened)
	a = exchange(b, ts, exchangeForm(svid(b, ts, agentA), opened.TaskID), "")
	var tok api.TokenResponse
	jsonDecode(b, a.body, &tok)
	if tok.AccessToken == "" {
		b.Fatalf("exchange: %d %s", a.status, a.body)
	}
	body := mustJSONTB(b, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: []byte(`{"id": 17, "fields": ["total", "vendor"]}`), DataClass: "confidential"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	authz := "Bearer " + tok.AccessToken

	var next atomic.Int64
	var failed atomic.Int64
	var firstFailure atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				url := servers[int(n)%len(servers)].url + "/v1/authorize"
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", authz)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[c] = append(lat[c], time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, got))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d calls were not allowed; the first: %v", n, b.N, firstFailure.Load())
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func jsonDecode(b testing.TB, data []byte, v any) {
	b.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		b.Fatalf("decoding %s: %v", data, err)
	}
}
