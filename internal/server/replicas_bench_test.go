package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
)

// BenchmarkAuthorizeHTTPPostgres is BenchmarkAuthorizeHTTP on PostgreSQL,
// with 1 and 3 replicas in this process sharing one database; 64 clients
// send their calls round-robin over the replicas.
//
//	WRIT_TEST_POSTGRES_DSN=postgres://… go test ./internal/server -run '^$' -bench AuthorizeHTTPPostgres -benchtime 20000x
func BenchmarkAuthorizeHTTPPostgres(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d/clients=64", replicas), func(b *testing.B) {
			benchAuthorizeReplicas(b, replicas, 64)
		})
	}
}

func benchAuthorizeReplicas(b *testing.B, replicas, clients int) {
	dsn := pgtest.DSN(b)
	var servers []*testServer
	first := b.TempDir()
	for i := range replicas {
		cfg := config.Default()
		cfg.DataDir, cfg.Listen, cfg.Dev, cfg.Environment = first, "127.0.0.1:0", true, "dev"
		cfg.Store, cfg.DSN = config.StorePostgres, dsn
		cfg.Log.Level = "error"
		// Several servers share two cores with the clients here: a
		// starved evaluation past the default 50ms would deny.
		cfg.Policy.Timeout = time.Second
		if i > 0 {
			cfg.DataDir = b.TempDir()
			cfg.Ledger.KeyFile = filepath.Join(first, ledger.KeyFile)
			cfg.Credentials.KeyFile = filepath.Join(first, "credential.key")
			copyDevIssuer(b, first, cfg.DataDir)
		}
		servers = append(servers, serve(b, cfg))
	}
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
