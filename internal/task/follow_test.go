package task_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// followedStore is a ledger store that keeps cursors and holds the
// projection and index tables: both backends are.
type followedStore interface {
	ledger.Store
	ledger.Cursors
	DB() *sql.DB
}

// clients are one replica's consumers of the ledger: the task state, the
// query index, and a consumer keeping its cursor in the store, which
// records every entry it is fed.
type clients struct {
	name    string
	store   followedStore
	kp      *ledger.KeyPair
	dialect query.Dialect
	prefix  string
	led     *ledger.Ledger
	svc     *task.Service
	ix      *query.Index
	// followers are handed each commit of led.
	followers atomic.Pointer[[]*ledger.Follower]
	cursor    *ledger.Follower
	stopCur   func()
	// fed is what the cursor consumer was fed, by index.
	mu  sync.Mutex
	fed map[uint64]ledger.Event
	bad []string
}

func (c *clients) hand(fs ...*ledger.Follower) {
	var list []*ledger.Follower
	for _, f := range fs {
		if f != nil {
			list = append(list, f)
		}
	}
	c.followers.Store(&list)
}

// record is the cursor consumer's apply: at least once, so an entry fed
// again must be the same.
func (c *clients) record(_ context.Context, ents []ledger.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range ents {
		ev := e.Event
		ev.Bodies = nil
		if old, ok := c.fed[e.Index]; ok && !sameEvent(old, ev) {
			c.bad = append(c.bad, fmt.Sprintf("entry %d fed as %+v, then as %+v", e.Index, old, ev))
		}
		c.fed[e.Index] = ev
	}
	return nil
}

func sameEvent(a, b ledger.Event) bool {
	return a.Type == b.Type && a.Time.Equal(b.Time) && a.TaskID == b.TaskID && a.Principal == b.Principal &&
		a.Agent == b.Agent && a.DecisionID == b.DecisionID && a.PolicyVersion == b.PolicyVersion && a.JTI == b.JTI &&
		a.TraceID == b.TraceID && string(a.Data) == string(b.Data)
}

// startCursor starts (again) the consumer keeping cursor "test/<name>".
func (c *clients) startCursor(t *testing.T) {
	t.Helper()
	if c.stopCur != nil {
		c.stopCur()
	}
	cons, err := ledger.CursorConsumer(c.store, "test/"+c.name, c.record)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ledger.NewFollower(ledger.FollowerConfig{Store: c.store, Consumer: cons, Name: "test cursor", Batch: 50,
		Settle: time.Millisecond, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.cursor = f
	c.stopCur = background(t, func(ctx context.Context) { f.Run(ctx) })
	c.hand(c.svc.Follower(), c.ix.Follower(), f)
}

// background runs fn until the test ends or stop is called, and waits
// for it to return.
func background(t *testing.T, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// openClients opens a ledger on st, with a task service (coordinated
// through shared when it is set), the query index under prefix and the
// cursor consumer.
func openClients(t *testing.T, name string, st followedStore, kp *ledger.KeyPair, shared task.Coordinator, dialect query.Dialect, prefix string) *clients {
	t.Helper()
	ctx := context.Background()
	c := &clients{name: name, store: st, kp: kp, dialect: dialect, prefix: prefix, fed: map[uint64]ledger.Event{}}
	led, err := ledger.New(ctx, ledger.Config{Store: st, Signer: kp, OnCommit: func(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
		if p := c.followers.Load(); p != nil {
			for _, f := range *p {
				f.Committed(first, events, leaves, hashes)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.led = led
	t.Cleanup(func() { led.Close(context.Background()) })
	// Results of calls past the window (spill.go) are found through
	// the replica's own index.
	find := func(ctx context.Context, id string, fresh bool) ([]uint64, error) {
		if fresh {
			return c.ix.ActionEventsFresh(ctx, id)
		}
		return c.ix.ActionEvents(ctx, id)
	}
	c.svc, err = task.New(ctx, task.Config{Ledger: led, Store: st, Policy: defaultPolicy(t), Environment: "prod", DB: st.DB(),
		DigestKey: kp.DigestKey(), Origin: kp.Name(), Verifier: kp.Verifier(), SweepInterval: -1, Shared: shared,
		FollowInterval: 50 * time.Millisecond, FindAction: find})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.svc.Close() })
	c.ix, err = query.New(ctx, query.Config{DB: st.DB(), Store: st, Dialect: dialect, Prefix: prefix, Batch: 50,
		Settle: time.Millisecond, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	background(t, c.ix.Run)
	c.startCursor(t)
	return c
}

func randomPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "qf" + hex.EncodeToString(b[:]) + "_"
}

// TestFollowersAgree runs every consumer of the ledger (the task state,
// the query index, a consumer with its cursor in the store) on SQLite and
// on three PostgreSQL replicas appending at once, each replica's flows
// crossing the others (a task opened on one, approved on the next, used
// on the third), with the cursor consumer restarted half-way; then finds
// every replica's state, the index and what the cursor consumers were fed
// agreeing with a replay of the whole ledger from scratch.
func TestFollowersAgree(t *testing.T) {
	// Snapshots in many parts, on both databases; restored after every
	// service is closed.
	t.Cleanup(task.SetSnapshotPartSize(64))
	for _, window := range []uint64{0, 1} {
		name := "in the table"
		if window > 0 {
			// Only the latest call authorized stays in the table: nearly
			// every result is of a call past the window, found through
			// the replica's index and claimed across replicas.
			name = "past the window"
		}
		t.Run(name, func(t *testing.T) {
			if window > 0 {
				defer task.SetFlightWindow(window)()
			}
			followersAgree(t, window)
		})
	}
}

func followersAgree(t *testing.T, window uint64) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		st, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		kp, _, err := ledger.LoadOrCreateKey(dir, "writ.test/log")
		if err != nil {
			t.Fatal(err)
		}
		agree(t, []*clients{openClients(t, "one", st, kp, nil, query.SQLite, randomPrefix())}, 4, 3, window)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		kp, _, err := ledger.LoadOrCreateKey(t.TempDir(), "writ.test/log")
		if err != nil {
			t.Fatal(err)
		}
		prefix := randomPrefix()
		var reps []*clients
		for i := range 3 {
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 8})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			reps = append(reps, openClients(t, fmt.Sprintf("r%d", i), st, kp, st, query.Postgres, prefix))
		}
		agree(t, reps, 3, 3, window)
	})
}

// agree runs flows flows on each of workers goroutines per replica, then
// checks every consumer against a replay.
func agree(t *testing.T, reps []*clients, workers, flows int, window uint64) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var started atomic.Int64
	half := int64(len(reps) * workers * flows / 2)
	restarted := make(chan struct{})
	for i := range reps {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range flows {
					if started.Add(1) == half {
						// Half-way, the first replica's cursor consumer
						// restarts from the cursor the store keeps.
						reps[0].startCursor(t)
						close(restarted)
					}
					if err := flow(ctx, reps, i, fmt.Sprintf("%d-%d-%d", i, w, k)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	<-restarted

	size, err := reps[0].store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range reps {
		for _, f := range []*ledger.Follower{c.svc.Follower(), c.ix.Follower(), c.cursor} {
			if f == nil {
				continue // the task state of a lone server applies its own commits
			}
			if err := f.CatchUp(ctx); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if f.Lag() != 0 || f.LastError() != nil {
				t.Errorf("%s: lag %d, last error %v after catching up", c.name, f.Lag(), f.LastError())
			}
		}
	}

	// The task state: a service that replays the whole ledger at start.
	st := reps[0].store
	replay, err := task.New(ctx, task.Config{Ledger: reps[0].led, Store: st, Policy: defaultPolicy(t),
		Environment: "prod", DigestKey: reps[0].kp.DigestKey(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	for _, c := range reps {
		if c.svc.Follower() != nil {
			if p := task.StatePosition(c.svc); p != size {
				t.Errorf("%s: the task state stands at %d of %d", c.name, p, size)
			}
		}
		if d := task.StateDiff(c.svc, replay); d != "" {
			t.Errorf("%s: the task state differs from a replay (-replica +replay):\n%s", c.name, d)
		}
	}

	if window > 0 {
		reps[0].mu.Lock()
		ents := make([]ledger.Entry, 0, size)
		for i := range size {
			ents = append(ents, ledger.Entry{Index: i, Event: reps[0].fed[i]})
		}
		reps[0].mu.Unlock()
		if n, want := completedPastWindow(ents, window), len(reps)*workers*flows; n < want {
			t.Errorf("%d results of calls past the window, want at least one a flow (%d)", n, want)
		} else {
			t.Logf("%d results of calls past the window", n)
		}
	}

	// The index: against one built from the store alone.
	scratchPrefix := randomPrefix()
	fresh, err := query.New(ctx, query.Config{DB: st.DB(), Store: st, Dialect: reps[0].dialect, Prefix: scratchPrefix, Batch: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Drop(context.Background())
	if n, err := fresh.CatchUp(ctx); err != nil || n != size {
		t.Fatalf("the index from scratch: %d of %d, %v", n, size, err)
	}
	for _, c := range reps {
		if n, err := c.ix.Through(ctx); err != nil || n != size {
			t.Errorf("%s: the index is through %d of %d, %v", c.name, n, size, err)
		}
	}
	for _, table := range []string{"meta", "events", "tasks", "credentials"} {
		live, scratch := dumpTable(t, st.DB(), reps[0].prefix+table), dumpTable(t, st.DB(), scratchPrefix+table)
		if len(live) == 0 || table != "meta" && len(live) < 2 {
			t.Errorf("index table %s holds %d rows", table, len(live))
		}
		if d := cmp.Diff(live, scratch); d != "" {
			t.Errorf("index table %s differs from one built from scratch (-followed +scratch):\n%s", table, d)
		}
	}

	// The cursor consumers: fed every entry as the store holds it, their
	// cursors at the end.
	leaves, err := st.ReadLeaves(ctx, 0, size)
	if err != nil || uint64(len(leaves)) != size {
		t.Fatalf("reading the ledger: %d leaves of %d, %v", len(leaves), size, err)
	}
	for _, c := range reps {
		c.mu.Lock()
		if len(c.bad) > 0 {
			t.Errorf("%s: the cursor consumer was fed differing entries: %v", c.name, c.bad)
		}
		if uint64(len(c.fed)) != size {
			t.Errorf("%s: the cursor consumer was fed %d entries of %d", c.name, len(c.fed), size)
		}
		for i, leaf := range leaves {
			e, err := ledger.ParseLeaf(uint64(i), leaf)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := c.fed[uint64(i)]; !ok || !sameEvent(got, e.Event) {
				t.Errorf("%s: entry %d fed as %+v; the ledger holds %+v", c.name, i, got, e.Event)
				break
			}
		}
		c.mu.Unlock()
		if n, err := st.Cursor(ctx, "test/"+c.name); err != nil || n != size {
			t.Errorf("%s: cursor at %d of %d, %v", c.name, n, size, err)
		}
	}

	// The state's snapshot: any replica writes it, one that covers less
	// never replaces it, and a start loads it.
	for _, c := range reps {
		if err := c.svc.WriteSnapshot(ctx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	through, ok := task.SnapshotThrough(reps[0].svc)
	if !ok || through >= size {
		t.Fatalf("the stored snapshot covers %d (%v) of %d", through, ok, size)
	}
	if err := task.StoreSnapshot(reps[0].svc, through-1); err != nil {
		t.Fatal(err)
	}
	if n, _ := task.SnapshotThrough(reps[0].svc); n != through {
		t.Errorf("a snapshot covering %d replaced one covering %d", n, through)
	}
	logs := &testkit.Buffer{}
	shared, _ := st.(task.Coordinator) // PostgreSQL: one replica more
	loaded, err := task.New(ctx, task.Config{Ledger: reps[0].led, Store: st, Policy: defaultPolicy(t), Environment: "prod",
		DigestKey: reps[0].kp.DigestKey(), SweepInterval: -1, DB: st.DB(), Shared: shared,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	if !strings.Contains(logs.String(), "task state loaded from its snapshot") {
		t.Errorf("a start did not load the snapshot:\n%s", logs.String())
	}
	if d := task.StateDiff(loaded, replay); d != "" {
		t.Errorf("the state loaded from the snapshot differs from a replay (-loaded +replay):\n%s", d)
	}
	if n, err := task.SnapshotParts(loaded); err != nil || n < 2 {
		t.Errorf("the snapshot is in %d parts (%v); want several", n, err)
	}

	// The projection tables, written by the replica that holds them, and
	// the snapshot.
	testkit.Eventually(t, 30*time.Second, func() error {
		diffs, err := task.CheckProjections(ctx, st, st.DB())
		if err == nil && len(diffs) > 0 {
			err = fmt.Errorf("projection tables differ from the ledger: %v", diffs)
		}
		return err
	})

	// A part removed: the next start does not use the snapshot.
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM task_snapshot_part WHERE part = 1`); err != nil {
		t.Fatal(err)
	}
	logs = &testkit.Buffer{}
	again, err := task.New(ctx, task.Config{Ledger: reps[0].led, Store: st, Policy: defaultPolicy(t), Environment: "prod",
		DigestKey: reps[0].kp.DigestKey(), SweepInterval: -1, DB: st.DB(), Shared: shared,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); strings.Contains(s, "loaded from its snapshot") || !strings.Contains(s, "snapshot is not used") {
		t.Errorf("a start on a snapshot with a part missing:\n%s", s)
	}
	if d := task.StateDiff(again, replay); d != "" {
		t.Errorf("the state replayed differs from a replay (-again +replay):\n%s", d)
	}
	again.Close()
}

// dumpTable returns the rows of table in the order of its first column.
func dumpTable(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			if raw, ok := v.([]byte); ok {
				v = string(raw)
			}
			fmt.Fprintf(&b, "%v|", v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flow is one task's story told across the replicas: opened on one,
// credential recorded on the next, two authorizations and their results, a
// step-up requested, approved and used, a second task approved and
// revoked, the first completed, and an event appended around the task
// service.
func flow(ctx context.Context, reps []*clients, i int, id string) error {
	r := func(k int) *task.Service { return reps[(i+k)%len(reps)].svc }
	a, err := r(0).Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices " + id, Scope: scope("internal", "prod"), TTL: "15m"})
	if err != nil {
		return fmt.Errorf("flow %s: open: %w", id, err)
	}
	jti := "jti-" + id
	exp := time.Now().Add(5 * time.Minute)
	if err := r(1).RecordCredential(ctx, task.Credential{JTI: jti, TaskID: a.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", "sha256:x"); err != nil {
		return fmt.Errorf("flow %s: credential: %w", id, err)
	}
	cred := task.VerifiedCredential{JTI: jti, TaskID: a.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	ok, err := r(2).Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/"+id, `{"n":1}`), task.Request{Gateway: "api"})
	if err != nil || !ok.Allow {
		return fmt.Errorf("flow %s: authorize: %+v %v", id, ok, err)
	}
	// A second call before the first one's result: with a window of one
	// the first is past it by then.
	ok2, err := r(1).Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/"+id, `{"n":3}`), task.Request{Gateway: "api"})
	if err != nil || !ok2.Allow {
		return fmt.Errorf("flow %s: authorize a second call: %+v %v", id, ok2, err)
	}
	for _, act := range []string{ok.ActionID, ok2.ActionID} {
		if _, err := r(0).RecordResult(ctx, cred, act, api.ActionResult{Status: "ok", Output: json.RawMessage(`[1]`)}); err != nil {
			return fmt.Errorf("flow %s: result: %w", id, err)
		}
	}
	su, err := r(0).Authorize(ctx, cred, call("invoices.read", "erp://other/"+id, `{"n":2}`), task.Request{Gateway: "api"})
	if err != nil || !su.ApprovalRequired {
		return fmt.Errorf("flow %s: step-up: %+v %v", id, su, err)
	}
	if _, err := r(1).DecideApproval(ctx, bob, su.ApprovalID, api.Decide{Decision: "approve"}); err != nil {
		return fmt.Errorf("flow %s: step-up approval: %w", id, err)
	}
	if out, err := r(2).Authorize(ctx, cred, call("invoices.read", "erp://other/"+id, `{"n":2}`), task.Request{Gateway: "api"}); err != nil || !out.Allow {
		return fmt.Errorf("flow %s: the approved step-up: %+v %v", id, out, err)
	}
	b, err := r(0).Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Read payroll " + id, Scope: scope("confidential", "prod"), TTL: "15m"})
	if err != nil {
		return fmt.Errorf("flow %s: open the second: %w", id, err)
	}
	if _, err := r(1).DecideTask(ctx, bob, b.TaskID, api.Decide{Decision: "approve"}); err != nil {
		return fmt.Errorf("flow %s: approve the second: %w", id, err)
	}
	if _, err := r(2).Revoke(ctx, alice, b.TaskID, "stop"); err != nil {
		return fmt.Errorf("flow %s: revoke the second: %w", id, err)
	}
	if _, err := r(1).Complete(ctx, alice, a.TaskID); err != nil {
		return fmt.Errorf("flow %s: complete: %w", id, err)
	}
	if _, err := reps[i].led.AppendAll(ctx, []ledger.Event{{Type: "import.test.flow", TaskID: a.TaskID, Data: json.RawMessage(`{"flow":"` + id + `"}`)}}); err != nil {
		return fmt.Errorf("flow %s: import: %w", id, err)
	}
	return nil
}

// faultyStore is a real PostgreSQL store whose decision lock and leaf
// reads can be made to fail, as an unreachable database would.
type faultyStore struct {
	*postgres.Store
	failLock, failRead atomic.Bool
}

func (f *faultyStore) Lock(ctx context.Context, name string, shared bool) (func(), error) {
	if f.failLock.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.Lock(ctx, name, shared)
}

func (f *faultyStore) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	if f.failRead.Load() {
		return nil, errors.New("connection reset")
	}
	return f.Store.ReadLeaves(ctx, start, end)
}

// TestGateFailsClosed: with replicas, a decision whose lock cannot be
// taken, or under which the state cannot catch up with the other
// replicas, is refused with ledger.ErrUnavailable (a 503) and records
// nothing; once the database answers again, decisions go through.
func TestGateFailsClosed(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	kp, _, err := ledger.LoadOrCreateKey(t.TempDir(), "writ.test/log")
	if err != nil {
		t.Fatal(err)
	}
	var reps []*clients
	var faulty *faultyStore
	for i := range 2 {
		st, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		var fs followedStore = st
		var co task.Coordinator = st
		if i == 0 {
			faulty = &faultyStore{Store: st}
			fs, co = faulty, faulty
		}
		reps = append(reps, openClients(t, fmt.Sprintf("r%d", i), fs, kp, co, query.Postgres, randomPrefix()))
	}
	svc, other := reps[0].svc, reps[1].svc
	open := func(s *task.Service) (api.TaskOpened, error) {
		return s.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices", Scope: scope("internal", "prod"), TTL: "15m"})
	}
	a, err := open(svc)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(5 * time.Minute)
	if err := svc.RecordCredential(ctx, task.Credential{JTI: "jti-a", TaskID: a.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", "sha256:x"); err != nil {
		t.Fatal(err)
	}
	cred := task.VerifiedCredential{JTI: "jti-a", TaskID: a.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	authorize := func() error {
		out, err := svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), task.Request{Gateway: "api"})
		if err == nil && !out.Allow {
			err = fmt.Errorf("denied: %+v", out)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		fail *atomic.Bool
	}{
		{"the lock", &faulty.failLock},
		{"the catch-up", &faulty.failRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fail.Store(true)
			// Something to catch up with: another replica's task.
			if _, err := open(other); err != nil {
				t.Fatal(err)
			}
			before, _ := reps[0].store.Size(ctx)
			if _, err := open(svc); !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("Open without %s: %v, want ErrUnavailable", tc.name, err)
			}
			if _, err := svc.Revoke(ctx, alice, a.TaskID, "stop"); !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("Revoke without %s: %v, want ErrUnavailable", tc.name, err)
			}
			if err := authorize(); !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("Authorize without %s: %v, want ErrUnavailable", tc.name, err)
			}
			if after, _ := reps[0].store.Size(ctx); after != before {
				t.Errorf("%d events recorded by refused decisions", after-before)
			}
			tc.fail.Store(false)
			if err := authorize(); err != nil {
				t.Errorf("Authorize once %s works again: %v", tc.name, err)
			}
		})
	}
}
