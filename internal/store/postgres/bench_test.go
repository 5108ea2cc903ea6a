package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
)

// BenchmarkAppend measures durable appends per second on PostgreSQL with 1
// and 3 ledgers (as 3 writ replicas would run) sharing one database, and
// 1, 16 or 128 appenders spread over them. Each append is acknowledged only
// after its transaction commits (synchronous_commit on). Besides the
// appends' latency it reports, per committed batch, its events (mean), how
// long it waited for the log's head lock and how long it held it (p50, p99
// and the hold's mean), and the share of the run the lock was held by some
// batch, which is what limits every replica together: the log cannot take
// more than events/batch ÷ the mean hold appends per second. A batch
// committed in one round trip (stamped ahead of the lock) reports no wait
// and holds the lock for at most that round trip, its measured hold;
// one-trip-share is the share of commits that were.
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
	stores := make([]*postgres.Store, replicas)
	var lock lockStats
	for i := range replicas {
		cfg := ledger.DefaultConfig()
		stores[i] = openStore(b, dsn, postgres.Options{})
		cfg.Store, cfg.Signer = stores[i], kp
		cfg.Observe = lock.observe
		var err error
		ledgers[i], err = ledger.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer ledgers[i].Close(ctx)
	}
	lock.reset()
	before := sequenceStats(stores)
	storetest.ReportAppends(b, storetest.RunAppenders(b, ledgers, appenders, b.N))
	lock.report(b)
	after := sequenceStats(stores)
	if n := after.Ahead - before.Ahead + after.Locked - before.Locked; n > 0 {
		b.ReportMetric(float64(after.Ahead-before.Ahead)/float64(n), "one-trip-share")
	}
}

// sequenceStats sums the stores' SequenceStats.
func sequenceStats(stores []*postgres.Store) postgres.SequenceStats {
	var sum postgres.SequenceStats
	for _, s := range stores {
		st := s.SequenceStats()
		sum.Ahead, sum.Refused, sum.Locked = sum.Ahead+st.Ahead, sum.Refused+st.Refused, sum.Locked+st.Locked
	}
	return sum
}

// lockStats gathers the ledgers' batches (Config.Observe) while measured.
type lockStats struct {
	mu     sync.Mutex
	held   []time.Duration
	wait   []time.Duration
	events int
}

func (s *lockStats) observe(c ledger.CommitStats) {
	if c.Err != nil || c.LockHeld == 0 || c.Events == 0 {
		return // a checkpoint alone, or a failure
	}
	s.mu.Lock()
	s.held = append(s.held, c.LockHeld)
	s.wait = append(s.wait, c.LockWait)
	s.events += c.Events
	s.mu.Unlock()
}

func (s *lockStats) reset() {
	s.mu.Lock()
	s.held, s.wait, s.events = nil, nil, 0
	s.mu.Unlock()
}

func (s *lockStats) report(b *testing.B) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) == 0 {
		b.Fatal("no batch reported holding the head lock")
	}
	var sum time.Duration
	for _, h := range s.held {
		sum += h
	}
	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	pct := func(ds []time.Duration, p int) float64 {
		s := slices.Sorted(slices.Values(ds))
		return µs(s[(len(s)-1)*p/100])
	}
	b.ReportMetric(float64(s.events)/float64(len(s.held)), "events/batch")
	b.ReportMetric(pct(s.held, 50), "lock-held-p50-µs")
	b.ReportMetric(pct(s.held, 99), "lock-held-p99-µs")
	b.ReportMetric(µs(sum)/float64(len(s.held)), "lock-held-mean-µs")
	b.ReportMetric(pct(s.wait, 50), "lock-wait-p50-µs")
	b.ReportMetric(pct(s.wait, 99), "lock-wait-p99-µs")
	b.ReportMetric(sum.Seconds()/b.Elapsed().Seconds(), "lock-busy")
}
