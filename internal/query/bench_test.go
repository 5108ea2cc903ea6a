package query_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// BenchmarkTraceLargeLedger measures reconstructing one task's chain out of
// a large ledger: finding its events through the index, reading them and
// proving each one's inclusion in the latest checkpoint. Building the
// ledger takes minutes, so it runs only when WRIT_BENCH_LEDGER_SIZE names
// the number of events, e.g.
//
//	WRIT_BENCH_LEDGER_SIZE=10000000 go test ./internal/query -run '^$' -bench TraceLargeLedger -benchtime 200x -timeout 2h
func BenchmarkTraceLargeLedger(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("WRIT_BENCH_LEDGER_SIZE"))
	if n <= 0 {
		b.Skip("set WRIT_BENCH_LEDGER_SIZE to the number of events (e.g. 10000000)")
	}
	ctx := context.Background()
	e := newLedger(b)
	start := time.Now()
	fill(b, e.led, n/2)
	taskID, _, _ := e.story(b)
	size, _ := e.store.Size(ctx)
	fill(b, e.led, n-int(size))
	b.Logf("ledger of %d events built in %s", n, time.Since(start).Round(time.Second))
	ix, err := query.New(ctx, query.Config{DB: e.store.DB(), Store: e.store, Batch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if _, err := ix.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("index caught up in %s", time.Since(start).Round(time.Second))
	// Let the ledger sign a checkpoint over everything.
	testkit.Eventually(b, 30*time.Second, func() error {
		cp, err := e.store.LatestCheckpoint(ctx)
		if err != nil {
			return err
		}
		if size, err := e.store.Size(ctx); err != nil || cp.Size < size {
			return fmt.Errorf("the latest checkpoint covers %d of %d events (%v)", cp.Size, size, err)
		}
		return nil
	})
	origin, v := e.origin, e.verifier

	b.Run("index", func(b *testing.B) {
		var events int
		for b.Loop() {
			tasks, err := ix.TaskTree(ctx, taskID)
			if err != nil || len(tasks) == 0 {
				b.Fatalf("tree: %v %v", tasks, err)
			}
			idx, err := ix.TaskEvents(ctx, tasks)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := task.ProveEvents(ctx, e.store, origin, v, idx)
			if err != nil {
				b.Fatal(err)
			}
			for _, te := range tr.Events {
				if !te.Verified {
					b.Fatalf("event %d unverified", te.Index)
				}
			}
			events = len(tr.Events)
		}
		b.ReportMetric(float64(events), "events")
	})
	b.Run("state", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.svc.Trace(ctx, taskID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fill appends n small events of many tasks other than the one traced.
func fill(b *testing.B, led *ledger.Ledger, n int) {
	b.Helper()
	const batch = 4096
	events := make([]ledger.Event, 0, batch)
	for i := 0; i < n; i++ {
		events = append(events, ledger.Event{Type: "import.bench.filler", TaskID: fmt.Sprintf("tsk_filler%06d", i%200000),
			Agent: "spiffe://example.org/agent/filler"})
		if len(events) == batch || i == n-1 {
			if _, err := led.AppendAll(context.Background(), events); err != nil {
				b.Fatal(err)
			}
			events = events[:0]
		}
	}
}

// BenchmarkIndexActions measures what the index costs per event in the
// shape that dominates a busy ledger: action.authorized events of one
// task, indexed into a database of their own as the server keeps it.
//
//	go test ./internal/query -run '^$' -bench IndexActions
func BenchmarkIndexActions(b *testing.B) {
	e := newLedger(b)
	const n = 20000
	appendActions(b, e, n, 1000)
	benchCatchUp(b, e, n, 1000, nil)
}

// BenchmarkIndexActionsPostgres is BenchmarkIndexActions with the index
// in PostgreSQL (a fresh schema each run), 5,000 events to a transaction
// as the server indexes them; the ledger it reads stays on SQLite.
//
//	WRIT_TEST_POSTGRES_DSN=… go test ./internal/query -run '^$' -bench IndexActionsPostgres
func BenchmarkIndexActionsPostgres(b *testing.B) {
	e := newLedger(b)
	const n = 20000
	appendActions(b, e, n, 1000)
	e.indexDB = func(b *testing.B) (*sql.DB, *sql.DB, query.Dialect) {
		db, err := sql.Open("pgx", pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		return db, db, query.Postgres
	}
	benchCatchUp(b, e, n, 5000, nil)
}

// BenchmarkIndexFromCommits measures the index fed this replica's own
// commits (Follower().Committed), as the server feeds it: the events are
// indexed without reading their leaves back from the store, 1,000 or 5,000
// (as the server does) to a transaction.
//
//	go test ./internal/query -run '^$' -bench IndexFromCommits
func BenchmarkIndexFromCommits(b *testing.B) {
	for _, batch := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchIndexFromCommits(b, batch) })
	}
}

func benchIndexFromCommits(b *testing.B, batch int) {
	e := newLedger(b)
	const n = 10000
	type commit struct {
		first  uint64
		events []ledger.Event
	}
	var commits []commit
	hook := func(first uint64, events []ledger.Event, leaves [][]byte) {
		commits = append(commits, commit{first, slices.Clone(events)})
	}
	e.committed.Store(&hook)
	appendActions(b, e, n, 100)
	e.committed.Store(nil)
	// The few events before the first action (the ledger's start, the
	// policy loaded) are read from the store.
	benchCatchUp(b, e, n, batch, func(ix *query.Index) {
		for _, c := range commits {
			ix.Follower().Committed(c.first, c.events, nil, nil)
		}
	})
}

// benchCatchUp measures catching a fresh index up with the ledger b.N
// times, after handing it commits with feed (timed too) when set, and
// reports the time per event of the n.
func benchCatchUp(b *testing.B, e *ledgerEnv, n, batch int, feed func(*query.Index)) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ix, closeIndex := benchIndex(b, e, batch)
		b.StartTimer()
		if feed != nil {
			feed(ix)
		}
		if _, err := ix.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		closeIndex()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/event")
}

// appendActions appends n action.authorized events of one task, batch to a
// commit.
func appendActions(b *testing.B, e *ledgerEnv, n, batch int) {
	b.Helper()
	events := make([]ledger.Event, 0, batch)
	for i := range n {
		data := fmt.Sprintf(`{"action_id":"act_%026d","args_mac":"hmac-sha256:%064d","data_class":"internal","effect":"allow",`+
			`"obligations":{"record_output":true},"operation":"read","policy_ids":["action-allow"],"resource":"bench://items/%d","tool":"bench.read"}`, i, i, i%100)
		events = append(events, ledger.Event{Type: ledger.TypeActionAuthorized, TaskID: "tsk_bench", Agent: "spiffe://writ.dev/agent/bench",
			Principal: "oidc:writ-dev#bench-requester", DecisionID: fmt.Sprintf("dec_%026d", i), PolicyVersion: "sha256:" + fmt.Sprintf("%064d", 7),
			JTI: "zC-3dCAeROKZ3Au-ayUCRA", Data: []byte(data)})
		if len(events) == cap(events) {
			if _, err := e.led.AppendAll(context.Background(), events); err != nil {
				b.Fatal(err)
			}
			events = events[:0]
		}
	}
}

// benchIndex opens an empty index in a database of its own, as the server
// keeps it, and returns it with the function that closes it.
func benchIndex(b *testing.B, e *ledgerEnv, batch int) (*query.Index, func()) {
	b.Helper()
	w, r, dialect := (*sql.DB)(nil), (*sql.DB)(nil), query.SQLite
	if e.indexDB != nil {
		w, r, dialect = e.indexDB(b)
	} else {
		var err error
		if w, r, err = query.OpenSQLite(filepath.Join(b.TempDir(), query.SQLiteFile)); err != nil {
			b.Fatal(err)
		}
	}
	ix, err := query.New(context.Background(), query.Config{DB: w, ReadDB: r, Store: e.store, Batch: batch, Dialect: dialect})
	if err != nil {
		b.Fatal(err)
	}
	return ix, func() {
		if r != w {
			r.Close()
		}
		w.Close()
	}
}
