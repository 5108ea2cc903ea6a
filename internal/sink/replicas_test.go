package sink_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
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
	ctx := context.Background()
	a, b, led := twoReplicas(t)
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
	appendN := func(from, n int) uint64 { return appendTicks(t, led, from, n) }
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

// TestReplicasLostLock: the database session that holds a sink's lock
// ends (its backend terminated) while the process running the sink waits
// for its destination's answer. That process is told, stops the sink and
// reports it inactive; the other takes the lock, goes on from the cursor,
// and afterwards runs the sink alone. The first process's late answer
// records its batch, which does not move the shared cursor back over what
// the other delivered since. The destination has every event, in order,
// none missing.
func TestReplicasLostLock(t *testing.T) {
	ctx := context.Background()
	a, b, led := twoReplicas(t)
	rc := newReceiver(t)
	held, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	var holding atomic.Bool
	rc.hold = func(last uint64) {
		if last >= 59 && holding.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	cursors := &cursorLog{}
	type process struct {
		set      *sink.Set
		requests *atomic.Int64
	}
	start := func(st *postgres.Store) process {
		var requests atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			rc.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		s, err := sink.New(ctx, sink.Config{Store: st, Cursors: watchedCursors{st, cursors}, Origin: origin, Locker: st, Watch: st.Watch,
			LockRetry: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			Getenv: func(string) string { return string(rc.secret) },
			Sinks: []config.SinkConfig{{Name: "hook", Type: config.SinkHTTP, Format: config.FormatWrit, URL: srv.URL, SecretEnv: "S",
				Batch: 20, Timeout: time.Minute}}})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		return process{s, &requests}
	}
	pa, pb := start(a), start(b)
	defer pa.set.Close(ctx)
	defer pb.set.Close(ctx)
	appendN := func(from, n int) uint64 { return appendTicks(t, led, from, n) }
	active := func(p process) bool { return p.set.Statuses()[0].Active }
	cursor := func() uint64 {
		pos, err := a.Cursor(ctx, sink.CursorName("hook"))
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	n := appendN(0, 100)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch past event 59 reached the destination")
	}
	running, waiting, runningStore := pa, pb, a
	if !active(pa) {
		running, waiting, runningStore = pb, pa, b
	}
	if !active(running) || active(waiting) {
		t.Fatalf("active: %v and %v, want one process running the sink", active(running), active(waiting))
	}
	pgtest.TerminateLockHolder(t, pgtest.DSN(t), runningStore.LockKey(sink.CursorName("hook")))
	// The other takes over from the cursor: it sends the held batch again
	// (as it reads it: the same events, or more), then the rest.
	testkit.Eventually(t, 30*time.Second, func() error {
		if !active(waiting) {
			return fmt.Errorf("the other process does not run the sink")
		}
		return nil
	})
	testkit.Eventually(t, 30*time.Second, func() error { return rc.covers(n) })
	testkit.Eventually(t, 30*time.Second, func() error {
		if pos := cursor(); pos != n {
			return fmt.Errorf("cursor at %d, want %d", pos, n)
		}
		return nil
	})
	// The first process's destination answers at last: it records its
	// batch, stops and reports the sink inactive.
	unblock()
	testkit.Eventually(t, 30*time.Second, func() error {
		if active(running) {
			return fmt.Errorf("the process that lost the lock still runs the sink")
		}
		return nil
	})
	if pos := cursor(); pos != n {
		t.Fatalf("after the late answer to the process that lost the lock, the cursor is at %d, want %d", pos, n)
	}
	sent := running.requests.Load()
	n = appendN(100, 60)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.covers(n) })
	testkit.Eventually(t, 30*time.Second, func() error {
		if pos := cursor(); pos != n {
			return fmt.Errorf("cursor at %d, want %d", pos, n)
		}
		return nil
	})
	if got := running.requests.Load(); got != sent || active(running) || !active(waiting) {
		t.Errorf("after the handover the first process sent %d more batches (active %v), the other active %v",
			got-sent, active(running), active(waiting))
	}
	if back := cursors.backwards(); len(back) > 0 {
		t.Errorf("the cursor moved back: %v", back)
	}
}

// cursorLog is what the stored cursors of a test's processes were after
// each write, in the order of the writes.
type cursorLog struct {
	mu   sync.Mutex
	last map[string]uint64
	back []string
}

func (l *cursorLog) backwards() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.back
}

// watchedCursors notes in log where each write leaves the cursor it moves.
type watchedCursors struct {
	ledger.Cursors
	log *cursorLog
}

func (w watchedCursors) SetCursor(ctx context.Context, name string, next uint64) error {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	if err := w.Cursors.SetCursor(ctx, name, next); err != nil {
		return err
	}
	now, err := w.Cursors.Cursor(ctx, name)
	if err != nil {
		return err
	}
	if last := w.log.last[name]; now < last {
		w.log.back = append(w.log.back, fmt.Sprintf("%s from %d to %d (a write of %d)", name, last, now, next))
	}
	if w.log.last == nil {
		w.log.last = map[string]uint64{}
	}
	w.log.last[name] = now
	return nil
}

// twoReplicas opens two processes' stores on one PostgreSQL database, and
// a ledger on the first.
func twoReplicas(t *testing.T) (a, b *postgres.Store, led *ledger.Ledger) {
	t.Helper()
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
	a, b = open(), open()
	kp, _, err := ledger.LoadOrCreateKey(t.TempDir(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if led, err = ledger.New(ctx, ledger.Config{Store: a, Signer: kp}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close(context.Background()) })
	return a, b, led
}

// appendTicks appends n test events numbered from from, and returns the
// log's size after the last.
func appendTicks(t *testing.T, led *ledger.Ledger, from, n int) uint64 {
	t.Helper()
	var last uint64
	for i := range n {
		var err error
		if last, err = led.Append(context.Background(), ledger.Event{Type: "import.test.tick", Time: time.Now(),
			Data: []byte(fmt.Sprintf(`{"n":%d}`, from+i))}); err != nil {
			t.Fatal(err)
		}
	}
	return last + 1
}
