package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/storetest"
)

// TestAheadChecked drives Sequence by hand: a batch stamped ahead of the
// lock is written only when the head is still where this store's last
// commit left it, and, when the database's checkpoint age calls for a
// checkpoint, only with one; otherwise nothing of it is written and stamp
// is called again under the lock. A checkpoint it carries that is not yet
// due is left out. Once another writer has moved the head under such a
// batch, batches go under the lock until one finds the head unmoved.
func TestAheadChecked(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	s, other := openStore(t, dsn, postgres.Options{}), openStore(t, dsn, postgres.Options{})
	cp := func(n uint64) *ledger.StoredCheckpoint {
		return &ledger.StoredCheckpoint{Size: n, Note: []byte(fmt.Sprintf("cp %d", n))}
	}
	// step stamps with ahead on an AheadReader and locked on the lock's
	// reader, and returns which readers it was called with.
	var last ledger.AheadReader
	step := func(st *postgres.Store, known uint64, ahead, locked func(ledger.LockedReader) *ledger.Batch) []string {
		t.Helper()
		var calls []string
		err := st.Sequence(ctx, known, func(ctx context.Context, r ledger.LockedReader) (*ledger.Batch, error) {
			if ar, ok := r.(ledger.AheadReader); ok {
				calls = append(calls, "ahead")
				last = ar
				if ahead == nil {
					return nil, ledger.ErrLockNeeded
				}
				return ahead(r), nil
			}
			calls = append(calls, "locked")
			return locked(r), nil
		})
		if err != nil {
			t.Fatalf("Sequence at %d: %v", known, err)
		}
		return calls
	}
	batch := func(start, n uint64, c *ledger.StoredCheckpoint) func(ledger.LockedReader) *ledger.Batch {
		return func(ledger.LockedReader) *ledger.Batch {
			b := storetest.Batch(start, n)
			b.Checkpoint = c
			return b
		}
	}
	interval := func(d time.Duration, f func(ledger.LockedReader) *ledger.Batch) func(ledger.LockedReader) *ledger.Batch {
		return func(r ledger.LockedReader) *ledger.Batch {
			r.(ledger.AheadReader).UseCheckpointInterval(d)
			return f(r)
		}
	}
	unexpected := func(ledger.LockedReader) *ledger.Batch {
		t.Error("stamped ahead with no commit of this store's to go on")
		return nil
	}
	head := func(wantSize, wantCP uint64) {
		t.Helper()
		if n, err := s.Size(ctx); err != nil || n != wantSize {
			t.Errorf("size %d (%v), want %d", n, err, wantSize)
		}
		if c, err := s.LatestCheckpoint(ctx); err != nil || c.Size != wantCP {
			t.Errorf("latest checkpoint %d (%v), want %d", c.Size, err, wantCP)
		}
	}
	tests := []struct {
		name          string
		st            *postgres.Store
		known         uint64
		ahead, locked func(ledger.LockedReader) *ledger.Batch
		want          []string
		size, cp      uint64
	}{
		{"first commit, under the lock", s, 0, unexpected, batch(0, 2, cp(2)), []string{"locked"}, 2, 2},
		{"a checkpoint not yet due, left out", s, 2,
			interval(time.Hour, batch(2, 1, cp(3))), unexpected, []string{"ahead"}, 3, 2},
		{"no checkpoint where the interval calls for one", s, 3,
			interval(time.Nanosecond, batch(3, 1, nil)), batch(3, 1, cp(4)), []string{"ahead", "locked"}, 4, 4},
		{"the head as left", s, 4, interval(time.Hour, batch(4, 1, nil)), unexpected, []string{"ahead"}, 5, 4},
		{"a due checkpoint ahead", s, 5, interval(time.Nanosecond, batch(5, 1, cp(6))), unexpected, []string{"ahead"}, 6, 6},
		{"nothing to write, ahead", s, 6, func(ledger.LockedReader) *ledger.Batch { return nil }, unexpected, []string{"ahead"}, 6, 6},
		{"the lock asked for", s, 6, nil, func(ledger.LockedReader) *ledger.Batch { return nil }, []string{"ahead", "locked"}, 6, 6},
		{"after nothing written, under the lock", s, 6, batch(6, 1, nil), batch(6, 1, nil), []string{"locked"}, 7, 6},
		{"another store's checkpoint, the size unchanged", other, 7, unexpected,
			func(ledger.LockedReader) *ledger.Batch { return &ledger.Batch{Start: 7, Checkpoint: cp(7)} }, []string{"locked"}, 7, 7},
		{"refused: the checkpoint moved", s, 7, batch(7, 1, nil), batch(7, 1, nil), []string{"ahead", "locked"}, 8, 7},
		{"another store's batch", other, 8, unexpected, batch(8, 2, nil), []string{"locked"}, 10, 7},
		{"refused: the size moved", s, 8, batch(8, 1, nil),
			func(r ledger.LockedReader) *ledger.Batch {
				if n, _ := r.Size(ctx); n != 10 {
					t.Errorf("size under the lock %d, want 10", n)
				}
				return storetest.Batch(10, 1) // with a checkpoint at 11
			}, []string{"ahead", "locked"}, 11, 11},
		{"after another writer moved the head, under the lock", s, 11, unexpected, batch(11, 1, nil), []string{"locked"}, 12, 11},
		{"the head found as left, ahead again", s, 12, interval(time.Hour, batch(12, 1, nil)), unexpected, []string{"ahead"}, 13, 11},
	}
	for _, tt := range tests {
		before := tt.cp
		if c, err := s.LatestCheckpoint(ctx); err == nil {
			before = c.Size
		}
		if diff := cmp.Diff(tt.want, step(tt.st, tt.known, tt.ahead, tt.locked)); diff != "" {
			t.Errorf("%s: stamp calls (-want +got):\n%s", tt.name, diff)
		}
		if len(tt.want) == 1 && tt.want[0] == "ahead" {
			if stored := last.CheckpointStored(); stored != (tt.cp != before) {
				t.Errorf("%s: CheckpointStored %v; the latest checkpoint went from %d to %d", tt.name, stored, before, tt.cp)
			}
		}
		head(tt.size, tt.cp)
	}
	want := postgres.SequenceStats{Ahead: 4, Refused: 4, Locked: 7}
	if diff := cmp.Diff(want, s.SequenceStats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	rows, err := s.ReadLeaves(ctx, 0, 13)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storetest.Batch(0, 13).Leaves, rows); diff != "" {
		t.Errorf("leaves (-want +got):\n%s", diff)
	}
}

// TestAheadAlternatingReplicas: two replicas take turns appending the
// events of the same tasks, so that a batch stamped ahead is often refused
// and stamped again under the lock. Every append gets its own index, the
// leaf there is its event, every task event names its task's previous one
// and the log verifies.
func TestAheadAlternatingReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	kp := storetest.NewKey(t, "ahead.example/log")
	var stores []*postgres.Store
	var ledgers []*ledger.Ledger
	for range 2 {
		s := openStore(t, dsn, postgres.Options{})
		l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp, CheckpointInterval: 3 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		stores, ledgers = append(stores, s), append(ledgers, l)
	}
	const n = 240
	got := make([]uint64, n)
	for k := range n {
		w := k % 2 // alternating
		if k < n/2 {
			w = (k / 5) % 2 // in runs of five
		}
		e := ledger.Event{Type: "import.test", TaskID: fmt.Sprintf("tsk_%d", k%3), Data: json.RawMessage(fmt.Sprintf(`{"k":%d}`, k))}
		i, err := ledgers[w].Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		got[k] = i
		if k%40 == 0 {
			time.Sleep(5 * time.Millisecond) // let a checkpoint come due
		}
	}
	for _, l := range ledgers {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]int{}
	for k, i := range got {
		if j, dup := seen[i]; dup {
			t.Fatalf("appends %d and %d both got index %d", j, k, i)
		}
		seen[i] = k
	}
	size, err := stores[0].Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	err = stores[0].ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		if e.Event.Type != "import.test" {
			return nil
		}
		var d struct{ K int }
		if err := json.Unmarshal(e.Event.Data, &d); err != nil {
			return err
		}
		if k, ok := seen[i]; !ok || k != d.K {
			return fmt.Errorf("leaf %d holds append %d; its index went to append %d (%v)", i, d.K, k, ok)
		}
		task := e.Event.TaskID
		p, ok := last[task]
		switch {
		case !ok && e.Event.Prev != nil:
			return fmt.Errorf("leaf %d, the first of task %s, names prev %d", i, task, *e.Event.Prev)
		case ok && (e.Event.Prev == nil || *e.Event.Prev != p):
			return fmt.Errorf("leaf %d of task %s names prev %v; the task's previous event is %d", i, task, e.Event.Prev, p)
		}
		last[task] = i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || size < n {
		t.Errorf("%d distinct indexes for %d appends, size %d", len(seen), n, size)
	}
	rep, err := ledger.Verify(ctx, stores[0], kp.Verifier(), "")
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Failures)
	}
	var sum postgres.SequenceStats
	for i, s := range stores {
		st := s.SequenceStats()
		t.Logf("replica %d: %+v", i, st)
		if st.Ahead == 0 || st.Refused == 0 {
			t.Errorf("replica %d: %d batches committed ahead, %d refused; want some of each", i, st.Ahead, st.Refused)
		}
		sum.Ahead, sum.Refused, sum.Locked = sum.Ahead+st.Ahead, sum.Refused+st.Refused, sum.Locked+st.Locked
	}
	cps := 0
	if err := stores[0].ScanCheckpoints(ctx, func(ledger.StoredCheckpoint) error { cps++; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d checkpoints, %d links; %+v", rep.Size, cps, rep.Links, sum)
}

// TestAheadOneReplica: a lone replica commits nearly every batch in one
// round trip, checkpoints included.
func TestAheadOneReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	kp := storetest.NewKey(t, "ahead.example/one")
	s := openStore(t, dsn, postgres.Options{})
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 200 {
		if _, err := l.Append(ctx, ledger.Event{Type: "import.test", TaskID: "tsk_1", Data: json.RawMessage(fmt.Sprintf(`{"k":%d}`, k))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.SequenceStats()
	cps := 0
	if err := s.ScanCheckpoints(ctx, func(ledger.StoredCheckpoint) error { cps++; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v, %d checkpoints", st, cps)
	// The load at open goes under the lock, and so do the batches after a
	// timer's checkpoint found nothing to sign, and those whose
	// checkpoint's age is within a round trip of the interval.
	if st.Ahead < 150 {
		t.Errorf("%d commits in one round trip for 200 appends (%+v)", st.Ahead, st)
	}
	if cps < 3 {
		t.Errorf("%d checkpoints at a 20ms interval", cps)
	}
	rep, err := ledger.Verify(ctx, s, kp.Verifier(), "")
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Failures)
	}
}
