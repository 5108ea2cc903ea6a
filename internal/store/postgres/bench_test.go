package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
)

// benchEvent is a typical action.authorized event, as in the ledger's own
// benchmarks: envelope fields, a small data object and one committed body.
func benchEvent(i int) ledger.Event {
	data, _ := json.Marshal(map[string]any{
		"action_id": "act_" + strconv.Itoa(i), "tool": "invoices.read", "operation": "read",
		"resource": "erp://invoices/2026-Q3/" + strconv.Itoa(i), "data_class": "confidential",
		"decision": "allow", "reasons": []string{"task scope covers tool and resource"},
	})
	return ledger.Event{
		Type: ledger.TypeActionAuthorized, TaskID: "tsk_01JD8X6Q5Z3V4M2N8P7R", Principal: "oidc:https://id.example.com#alice",
		Agent: "spiffe://example.org/agent/summarizer", DecisionID: "dec_" + strconv.Itoa(i),
		PolicyVersion: "sha256:9f2c4a1b7e3d5f60c8a9b2d1e4f70a3c5b6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f", JTI: "jti_" + strconv.Itoa(i),
		Data:   data,
		Bodies: map[string][]byte{"arguments": []byte(`{"invoice":"` + strconv.Itoa(i) + `","fields":["total","vendor"]}`)},
	}
}

// BenchmarkAppend measures durable appends per second on PostgreSQL with 1
// and 3 ledgers (as 3 writ replicas would run) sharing one database, and
// 16 or 128 appenders spread over them. Each append is acknowledged only
// after its transaction commits (synchronous_commit on).
//
//	WRIT_TEST_POSTGRES_DSN=postgres://… go test ./internal/store/postgres -run '^$' -bench Append -benchtime 5s
func BenchmarkAppend(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		for _, appenders := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("replicas=%d/appenders=%d", replicas, appenders), func(b *testing.B) {
				benchAppend(b, replicas, appenders)
			})
		}
	}
}

func benchAppend(b *testing.B, replicas, appenders int) {
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	kp := storetest.NewKey(b, "bench.example/log")
	ledgers := make([]*ledger.Ledger, replicas)
	for i := range replicas {
		cfg := ledger.DefaultConfig()
		cfg.Store, cfg.Signer = openStore(b, dsn, postgres.Options{}), kp
		var err error
		ledgers[i], err = ledger.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer ledgers[i].Close(ctx)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, appenders)
	var wg sync.WaitGroup
	b.ResetTimer()
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ledgers[a%replicas]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := l.Append(ctx, benchEvent(int(i))); err != nil {
					b.Error(err)
					return
				}
				lat[a] = append(lat[a], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}
