package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
)

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
	storetest.ReportAppends(b, storetest.RunAppenders(b, ledgers, appenders, b.N))
}
