package sink_test

import (
	"context"
	"fmt"
	"net/http/httptest"
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
// event once, in order; both report the lag.
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
	rc := newReceiver(t)
	srv := httptest.NewServer(rc)
	defer srv.Close()
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
	n := appendN(0, 100)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
	active := func() int {
		k := 0
		for _, s := range []*sink.Set{sa, sb} {
			if s.Statuses()[0].Active {
				k++
			}
		}
		return k
	}
	if k := active(); k != 1 {
		t.Fatalf("%d processes run the sink, want 1", k)
	}
	// Whichever ran it stops; the other goes on from the cursor.
	if sa.Statuses()[0].Active {
		sa.Close(ctx)
		sa, sb = sb, sa
	} else {
		sb.Close(ctx)
	}
	n = appendN(100, 60)
	testkit.Eventually(t, 30*time.Second, func() error { return rc.check(n) })
	if !sa.Statuses()[0].Active {
		t.Error("the remaining process does not run the sink")
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if st := sa.Statuses()[0]; st.Lag != 0 {
			return fmt.Errorf("lag %d", st.Lag)
		}
		return nil
	})
	sa.Close(ctx)
}
