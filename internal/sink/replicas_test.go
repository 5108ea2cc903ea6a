package sink_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/sink"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/testkit"
)

// TestReplicasRunEachSinkOnce: two processes' sinks on one PostgreSQL
// store. One at a time runs the sink (the store's lock); when it stops,
// the other takes over at the cursor, and the destination has every
// event once, in order; both report the lag. The first process stops
// while its last batch is at the destination, not yet answered: a
// graceful stop finishes that delivery and records its cursor before it
// lets the lock go, so nothing is sent twice, not even under the same
// Idempotency-Key.
func TestReplicasRunEachSinkOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	kp, _, err := ledger.LoadOrCreateKey(t.TempDir(), origin)
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.New(ctx, ledger.Config{Store: a, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close(ctx)
	const first = 100
	rc := newReceiver(t)
	held, release := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	rc.hold = func(last uint64) {
		if last == first-1 && holding.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	defer close(release)
	start := func(st *postgres.Store) *sink.Set {
		s, err := sink.New(ctx, sink.Config{Store: st, Cursors: st, Origin: origin, Locker: st, Watch: st.Watch,
			LockRetry: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			Getenv: func(string) string { return string(rc.secret) },
			Sinks:  []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP, Format: config.FormatWrit, URL: srv.URL, SecretEnv: "S", Batch: 20}}})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		return s
	}
	sa, sb := start(a), start(b)
	defer sa.Close(ctx)
	defer sb.Close(ctx)
	appendN := func(from, n int) uint64 {
		var last uint64
		for i := range n {
			if last, err = led.Append(ctx, ledger.Event{Type: "import.test.tick", Time: time.Now(),
				Data: []byte(fmt.Sprintf(`{"n":%d}`, from+i))}); err != nil {
				t.Fatal(err)
			}
		}
		return last + 1
	}
	n := appendN(0, first)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatalf("the batch ending at event %d never reached the destination", first-1)
	}
	if err := rc.check(n); err != nil {
		t.Fatal(err)
	}
	var running, waiting *sink.Set
	for _, s := range []*sink.Set{sa, sb} {
		if s.Statuses()[0].Active {
			if running != nil {
				t.Fatal("both processes run the sink")
			}
			running = s
		} else {
			waiting = s
		}
	}
	if running == nil {
		t.Fatal("no process runs the sink")
	}
	// The process running the sink stops with its last batch unanswered;
	// the destination answers once the stop has begun.
	closed := make(chan error, 1)
	go func() { closed <- running.Close(ctx) }()
	<-sink.Stopping(running)
	release <- struct{}{}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if pos, err := a.Cursor(ctx, sink.CursorName("hook")); err != nil || pos != n {
		t.Fatalf("after a graceful stop the cursor is at %d (%v), want %d", pos, err, n)
	}
	// The other goes on from the cursor.
	n = appendN(first, 60)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
	if !waiting.Statuses()[0].Active {
		t.Error("the remaining process does not run the sink")
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if st := waiting.Statuses()[0]; st.Lag != 0 {
			return fmt.Errorf("lag %d", st.Lag)
		}
		return nil
	})
	if err := waiting.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if records, repeats := rc.received(); records != int(n) || repeats != 0 {
		t.Errorf("the destination holds %d records and was sent %d batches again, want %d and none", records, repeats, n)
	}
}
