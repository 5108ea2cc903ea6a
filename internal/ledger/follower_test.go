package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

// recorder is a consumer that keeps what it is fed in memory, its
// position with it.
type recorder struct {
	mu   sync.Mutex
	next uint64
	seen []ledger.Entry
	// fail, when set, is asked before each Apply whether to fail it after
	// recording the entries up to (not including) the index it returns.
	fail func(first uint64) (uint64, bool)
	// block, when set, is waited on by Apply.
	block chan struct{}
}

func (r *recorder) Position(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next, nil
}

func (r *recorder) Apply(ctx context.Context, ents []ledger.Entry) (uint64, error) {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ents[0].Index, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ents[0].Index != r.next {
		return r.next, fmt.Errorf("fed from %d at position %d", ents[0].Index, r.next)
	}
	for _, e := range ents {
		if r.fail != nil {
			if upTo, fail := r.fail(ents[0].Index); fail && e.Index >= upTo {
				// Applied in part, acknowledged not at all.
				r.next = ents[0].Index
				return r.next, errors.New("consumer failed")
			}
		}
		r.seen = append(r.seen, e)
	}
	r.next = ents[len(ents)-1].Index + 1
	return r.next, nil
}

func (r *recorder) entries() []ledger.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ledger.Entry(nil), r.seen...)
}

// logged keeps the messages of what is logged through it.
type logged struct {
	slog.Handler
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }

func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[r.Message]++
	return nil
}

func (l *logged) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs[msg]
}

// countingStore counts the leaves read back from the store, and fails
// reads while failing is set.
type countingStore struct {
	ledger.Store
	read    atomic.Int64
	failing atomic.Bool
}

func (c *countingStore) ReadLeaves(ctx context.Context, from, to uint64) ([][]byte, error) {
	if c.failing.Load() {
		return nil, errors.New("store unreachable")
	}
	leaves, err := c.Store.ReadLeaves(ctx, from, to)
	c.read.Add(int64(len(leaves)))
	return leaves, err
}

// followed is a SQLite ledger whose commits are handed to a follower when
// the hook lets them through.
type followed struct {
	store *countingStore
	led   *ledger.Ledger
	// hook, when set, receives each commit.
	hook atomic.Pointer[func(first uint64, events []ledger.Event, leaves, hashes [][]byte)]
}

func newFollowed(t *testing.T) *followed {
	t.Helper()
	f := &followed{}
	d, l := openDir(t, t.TempDir(), func(c *ledger.Config) {
		c.OnCommit = func(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
			if h := f.hook.Load(); h != nil {
				(*h)(first, events, leaves, hashes)
			}
		}
	})
	f.store, f.led = &countingStore{Store: d.Store}, l
	return f
}

func (f *followed) follower(t *testing.T, c ledger.Consumer, tweak func(*ledger.FollowerConfig)) *ledger.Follower {
	t.Helper()
	cfg := ledger.FollowerConfig{Store: f.store, Consumer: c, Name: "test", Batch: 7,
		Bodies: map[string][]string{"import.test": {"note"}}, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	fl, err := ledger.NewFollower(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// run runs fl in the background until the test ends or stop is called.
func run(t *testing.T, fl *ledger.Follower) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fl.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkAll checks that ents are the whole log, in order, each entry as
// the store has it: its envelope, data, and the bodies asked for.
func checkAll(t *testing.T, st ledger.Store, ents []ledger.Entry) {
	t.Helper()
	ctx := context.Background()
	leaves := readAllLeaves(t, st)
	if len(ents) != len(leaves) {
		t.Fatalf("fed %d entries; the log holds %d", len(ents), len(leaves))
	}
	for i, got := range ents {
		want, err := ledger.ParseLeaf(uint64(i), leaves[i])
		if err != nil {
			t.Fatal(err)
		}
		if got.Index != uint64(i) {
			t.Fatalf("entry %d fed as %d", i, got.Index)
		}
		g, w := got.Event, want.Event
		if g.Type != w.Type || g.TaskID != w.TaskID || string(g.Data) != string(w.Data) || !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Fatalf("entry %d fed as %+v; the store holds %+v", i, g, w)
		}
		_, committed := want.Commitments["note"]
		body, err := st.ReadBody(ctx, ledger.BodyRef{Index: uint64(i), Name: "note"})
		if committed && err != nil {
			t.Fatal(err)
		}
		if string(g.Bodies["note"]) != string(body.Data) || g.Bodies["args"] != nil {
			t.Fatalf("entry %d fed with bodies %q; want the note %q only", i, g.Bodies, body.Data)
		}
	}
}

// TestFollowerOrder: a follower fed every other commit by hand (the rest
// are another writer's, as far as it knows) and woken by them feeds its
// consumer the whole log in index order, once, with the bodies it asks
// for. Once it is handed every commit, it reads nothing back.
func TestFollowerOrder(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	appendMany(t, f.led, 0, 20, 4, true) // before the follower: from the store
	rec := &recorder{}
	fl := f.follower(t, rec, nil)
	var n atomic.Int64
	var handed atomic.Int64
	hook := func(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
		if n.Add(1)%2 == 0 {
			handed.Add(int64(len(events)))
			fl.Committed(first, events, leaves, hashes)
		} else {
			fl.Notify()
		}
	}
	f.hook.Store(&hook)
	stop := run(t, fl)
	appendMany(t, f.led, 20, 300, 8, true)
	size, _ := f.store.Size(ctx)
	testkit.Eventually(t, 30*time.Second, func() error {
		if got := len(rec.entries()); uint64(got) != size {
			return fmt.Errorf("fed %d of %d entries", got, size)
		}
		return nil
	})
	checkAll(t, f.store.Store, rec.entries())
	if read, want := f.store.read.Load(), int64(size)-handed.Load(); read < want {
		t.Errorf("read %d leaves back from the store; the %d not handed over are not all among them", read, want)
	}

	if fl.Position() != size || fl.Lag() != 0 || fl.LastError() != nil {
		t.Errorf("position %d, lag %d, last error %v; want %d, 0, nil", fl.Position(), fl.Lag(), fl.LastError(), size)
	}

	stop()
	// A second follower, caught up and handed every commit (no Run
	// reading the store's size before a commit is handed over), reads
	// nothing back.
	rec2 := &recorder{next: size, seen: rec.entries()}
	fl2 := f.follower(t, rec2, nil)
	all := fl2.Committed
	f.hook.Store(&all)
	read := f.store.read.Load()
	appendMany(t, f.led, 320, 300, 8, true)
	if err := fl2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(t, f.store.Store, rec2.entries())
	if more := f.store.read.Load() - read; more != 0 {
		t.Errorf("read %d leaves back that were handed over", more)
	}
	size, _ = f.store.Size(ctx)
	if fl2.Position() != size || fl2.Lag() != 0 || fl2.LastError() != nil {
		t.Errorf("position %d, lag %d, last error %v; want %d, 0, nil", fl2.Position(), fl2.Lag(), fl2.LastError(), size)
	}
}

// TestFollowerHandOffOverflow: while the consumer is stuck, commits go on
// (Committed never waits for it) and the hand-off lets the oldest go; once
// it moves again it is fed everything, the dropped entries from the store.
func TestFollowerHandOffOverflow(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	rec := &recorder{block: make(chan struct{})}
	fl := f.follower(t, rec, func(c *ledger.FollowerConfig) { c.HandOff = 16 })
	hook := fl.Committed
	f.hook.Store(&hook)
	run(t, fl)
	// Run is stuck in Apply from the first entries on; the appends finish
	// regardless.
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendMany(t, f.led, 0, 400, 8, true)
	}()
	testkit.Eventually(t, 60*time.Second, func() error {
		select {
		case <-done:
			return nil
		default:
			return errors.New("appends did not finish while the follower's consumer was stuck")
		}
	})
	size, _ := f.store.Size(ctx)
	if lag := fl.Lag(); lag < 400 {
		t.Errorf("lag %d while stuck; want at least 400", lag)
	}
	close(rec.block)
	testkit.Eventually(t, 30*time.Second, func() error {
		if got := len(rec.entries()); uint64(got) != size {
			return fmt.Errorf("fed %d of %d entries", got, size)
		}
		return nil
	})
	checkAll(t, f.store.Store, rec.entries())
	// The first batch was taken from the hand-off before the consumer
	// got stuck, and the last 16 were still held; the rest was read.
	if read := f.store.read.Load(); read < int64(size)-16-7 || read > int64(size)-16-1 {
		t.Errorf("read %d of %d leaves from the store; want all but the first batch and the last 16", read, size)
	}
}

// TestFollowerAtLeastOnce: after Apply fails part-way, the entries it did
// not acknowledge are fed again, from the consumer's position: nothing is
// lost or skipped. CatchUp returns the error; Run reports it in LastError
// and retries until it succeeds.
func TestFollowerAtLeastOnce(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	appendMany(t, f.led, 0, 50, 4, true)
	var failing atomic.Bool
	failing.Store(true)
	rec := &recorder{fail: func(first uint64) (uint64, bool) { return 25, failing.Load() && first+7 > 25 }}
	logs := &logged{Handler: slog.DiscardHandler, msgs: map[string]int{}}
	fl := f.follower(t, rec, func(c *ledger.FollowerConfig) { c.Logger = slog.New(logs) })
	err := fl.CatchUp(ctx)
	if err == nil || fl.LastError() == nil {
		t.Fatalf("CatchUp over a failing consumer: %v, last error %v", err, fl.LastError())
	}
	pos := fl.Position()
	if pos > 25 {
		t.Fatalf("position %d after a failure at 25", pos)
	}
	run(t, fl)
	testkit.Eventually(t, 10*time.Second, func() error {
		if n := logs.count("following the ledger failed; retrying"); n < 2 || fl.LastError() == nil {
			return fmt.Errorf("Run logged %d failures, last error %v", n, fl.LastError())
		}
		return nil
	})
	failing.Store(false)
	size, _ := f.store.Size(ctx)
	testkit.Eventually(t, 30*time.Second, func() error {
		if fl.Position() != size || fl.LastError() != nil || logs.count("following the ledger again") == 0 {
			return fmt.Errorf("position %d of %d, last error %v, recovery logged %d times", fl.Position(), size, fl.LastError(), logs.count("following the ledger again"))
		}
		return nil
	})
	// Entries applied in part came again: the consumer saw some twice,
	// each in order from where it stood.
	var dedup []ledger.Entry
	for _, e := range rec.entries() {
		if e.Index == uint64(len(dedup)) {
			dedup = append(dedup, e)
		} else if e.Index > uint64(len(dedup)) {
			t.Fatalf("entry %d fed before %d", e.Index, len(dedup))
		}
	}
	checkAll(t, f.store.Store, dedup)
	if len(rec.entries()) == len(dedup) {
		t.Error("no entry was fed twice; the failure applied nothing")
	}
}

// TestFollowerStoreErrors: reads that fail surface to CatchUp and to
// LastError, and following resumes once they succeed.
func TestFollowerStoreErrors(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	appendMany(t, f.led, 0, 30, 4, false)
	rec := &recorder{}
	fl := f.follower(t, rec, nil)
	f.store.failing.Store(true)
	if err := fl.CatchUp(ctx); err == nil || fl.LastError() == nil {
		t.Fatalf("CatchUp with the store failing: %v, last error %v", err, fl.LastError())
	}
	if err := fl.SyncTo(ctx, 1000); err == nil {
		t.Fatal("SyncTo past the log succeeded")
	}
	f.store.failing.Store(false)
	if err := fl.SyncTo(ctx, 1000); err == nil {
		t.Fatal("SyncTo past the log succeeded")
	}
	if err := fl.SyncTo(ctx, 10); err != nil || fl.Position() < 10 {
		t.Fatalf("SyncTo(10): %v, position %d", err, fl.Position())
	}
	if err := fl.CatchUp(ctx); err != nil || fl.LastError() != nil {
		t.Fatalf("CatchUp: %v, last error %v", err, fl.LastError())
	}
	checkAll(t, f.store.Store, rec.entries())
	// A caller that gives up says nothing about the follower.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := fl.CatchUp(cctx); !errors.Is(err, context.Canceled) || fl.LastError() != nil {
		t.Errorf("CatchUp cancelled: %v, last error %v", err, fl.LastError())
	}
}

// TestFollowerCursorRestart: a consumer whose cursor the store keeps
// resumes after a restart where it stood, and after an error recording
// its cursor sees the unacknowledged entries again.
func TestFollowerCursorRestart(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	cursors, ok := f.store.Store.(ledger.Cursors)
	if !ok {
		t.Fatal("the SQLite store keeps no cursors")
	}
	appendMany(t, f.led, 0, 40, 4, true)
	var mu sync.Mutex
	var seen []ledger.Entry
	apply := func(_ context.Context, ents []ledger.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ents...)
		return nil
	}
	start := func() *ledger.Follower {
		c, err := ledger.CursorConsumer(cursors, "test/restart", apply)
		if err != nil {
			t.Fatal(err)
		}
		return f.follower(t, c, nil)
	}
	if err := start().CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := f.store.Size(ctx)
	if n, err := cursors.Cursor(ctx, "test/restart"); err != nil || n != first {
		t.Fatalf("cursor after catching up: %d, %v; want %d", n, err, first)
	}
	// Restart: a new follower on the same cursor.
	appendMany(t, f.led, 40, 40, 4, true)
	fl := start()
	if err := fl.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(t, f.store.Store, seen)
	// A cursor another process moved on (a replica that took over) is
	// followed from where it stands; one moved back by a process that no
	// longer owns it stays where it was.
	size, _ := f.store.Size(ctx)
	appendMany(t, f.led, 80, 20, 4, true)
	if err := cursors.SetCursor(ctx, "test/restart", size+12); err != nil {
		t.Fatal(err)
	}
	if err := cursors.SetCursor(ctx, "test/restart", 70); err != nil {
		t.Fatal(err)
	}
	if err := fl.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := seen[size:]; len(got) != 8 || got[0].Index != size+12 {
		t.Fatalf("after the cursor moved on to %d the consumer was fed %d entries from %d", size+12, len(got), got[0].Index)
	}
	if _, err := ledger.CursorConsumer(cursors, "", apply); err == nil {
		t.Error("a cursor consumer without a name")
	}
}

// TestFollowerStopRecordsApplied: a cursor consumer stopped while it
// applies a batch (its context ends) records the batch it applied, and the
// follower starts no other.
func TestFollowerStopRecordsApplied(t *testing.T) {
	f := newFollowed(t)
	cursors, ok := f.store.Store.(ledger.Cursors)
	if !ok {
		t.Fatal("the SQLite store keeps no cursors")
	}
	appendMany(t, f.led, 0, 40, 4, true)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var batches int
	c, err := ledger.CursorConsumer(cursors, "test/stop", func(actx context.Context, ents []ledger.Entry) error {
		batches++
		stop()
		if actx.Err() == nil {
			t.Error("apply's context outlived the stop")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.follower(t, c, nil).CatchUp(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("CatchUp stopped: %v", err)
	}
	if batches != 1 {
		t.Errorf("%d batches applied, want 1: none after the stop", batches)
	}
	if pos, err := cursors.Cursor(context.Background(), "test/stop"); err != nil || pos != 7 {
		t.Errorf("cursor after the stop at %d (%v), want 7: past the batch applied", pos, err)
	}
}

// sharedConsumer is a consumer standing in for several replicas sharing
// one position: others may have applied beyond what it is fed.
type sharedConsumer struct {
	recorder
	jump uint64 // when above the batch, Apply reports it as the position
}

func (s *sharedConsumer) Apply(ctx context.Context, ents []ledger.Entry) (uint64, error) {
	next, err := s.recorder.Apply(ctx, ents)
	if err == nil && s.jump > next {
		s.mu.Lock()
		next, s.next, s.jump = s.jump, s.jump, 0
		s.mu.Unlock()
	}
	return next, err
}

// TestFollowerPositionJumps: a consumer reporting a position beyond the
// batch (applied by someone else) is followed from there.
func TestFollowerPositionJumps(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	appendMany(t, f.led, 0, 40, 4, false)
	c := &sharedConsumer{jump: 30}
	fl := f.follower(t, c, nil)
	if err := fl.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	size, _ := f.store.Size(ctx)
	got := c.entries()
	if fl.Position() != size || len(got) != 7+int(size-30) || got[7].Index != 30 {
		t.Errorf("position %d of %d; fed %d entries", fl.Position(), size, len(got))
	}
}

func TestFollowerConfig(t *testing.T) {
	f := newFollowed(t)
	for _, cfg := range []ledger.FollowerConfig{
		{Consumer: &recorder{}},
		{Store: f.store},
		{Store: f.store, Consumer: &recorder{}, Batch: -1},
		{Store: f.store, Consumer: &recorder{}, MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := ledger.NewFollower(cfg); err == nil {
			t.Errorf("NewFollower(%+v) accepted", cfg)
		}
	}
}

// TestOnCommitAsRecorded: OnCommit is handed each event as its leaf
// records it, whatever the appender's JSON looked like, so that a
// follower handed it sees what a reader of the store sees.
func TestOnCommitAsRecorded(t *testing.T) {
	ctx := context.Background()
	f := newFollowed(t)
	var got []ledger.Event
	hook := func(_ uint64, events []ledger.Event, _, _ [][]byte) { got = append(got, events...) }
	f.hook.Store(&hook)
	local := time.FixedZone("east", 3*3600)
	in := ledger.Event{Type: "import.test", Time: time.Now().In(local), Data: []byte(`{ "z": 1.50, "a": ["\u0041", 10e2] }`)}
	idx, err := f.led.Append(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := f.store.Store.ReadLeaves(ctx, idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ledger.ParseLeaf(idx, leaves[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Data) != string(want.Event.Data) || got[0].Time != want.Event.Time {
		t.Fatalf("OnCommit was handed %+v; the leaf records %+v", got, want.Event)
	}
	if string(in.Data) == string(want.Event.Data) {
		t.Fatal("the test's data is canonical already")
	}
}
