package query_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

const agent = "spiffe://example.org/agent/summarizer"

var (
	alice = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#alice", Roles: []identity.Role{identity.RoleRequester}}
	bob   = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#bob", Roles: []identity.Role{identity.RoleApprover}}
)

// ledgerEnv is a real SQLite ledger with a task service on the default
// policy pack.
type ledgerEnv struct {
	store    *sqlite.Store
	led      *ledger.Ledger
	svc      *task.Service
	pol      *policy.Policy
	origin   string
	verifier note.Verifier
	// committed, when set, is the ledger's commit hook.
	committed atomic.Pointer[func(first uint64, events []ledger.Event, leaves [][]byte)]
	// clk is the task service's clock.
	clk *testkit.Clock
	// indexDB, when set, opens the benchmarks' index databases (write,
	// read) in place of a SQLite file of their own.
	indexDB func(*testing.B) (w, r *sql.DB, d query.Dialect)
}

func newLedger(t testing.TB) *ledgerEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	kp, _, err := ledger.LoadOrCreateKey(dir, "writ.test/query")
	if err != nil {
		t.Fatal(err)
	}
	e := &ledgerEnv{store: st, clk: testkit.NewClock(time.Now())}
	led, err := ledger.New(ctx, ledger.Config{Store: st, Signer: kp, MaxBatch: 4096,
		OnCommit: func(first uint64, events []ledger.Event, leaves, hashes [][]byte) {
			if f := e.committed.Load(); f != nil {
				(*f)(first, events, leaves)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(ctx, policy.Config{Recorder: led})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := task.New(ctx, task.Config{Ledger: led, Store: st, Policy: pol, Environment: "prod", SweepInterval: -1,
		Origin: kp.Name(), Verifier: kp.Verifier(), DigestKey: kp.DigestKey(), Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		pol.Close()
		led.Close(context.Background())
		st.Close()
	})
	e.led, e.svc, e.pol, e.origin, e.verifier = led, svc, pol, kp.Name(), kp.Verifier()
	return e
}

// story opens a task that needs approval, has bob approve it, issues a
// credential and makes an allowed and a denied call, then completes it.
func (e *ledgerEnv) story(t testing.TB) (taskID, jti string, active time.Time) {
	t.Helper()
	ctx := context.Background()
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices", TTL: "15m",
		Scope: api.Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://invoices/2026-Q3/*"},
			Operations: []string{"read"}, DataClass: "confidential", Environments: []string{"prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, api.Decide{Decision: "approve", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	jti = "jti-" + out.TaskID
	exp := time.Now().Add(5 * time.Minute)
	if err := e.svc.RecordCredential(ctx, task.Credential{JTI: jti, TaskID: out.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", e.pol.Version()); err != nil {
		t.Fatal(err)
	}
	cred := task.VerifiedCredential{JTI: jti, TaskID: out.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17",
		Arguments: json.RawMessage(`{"id":17}`), DataClass: "internal"}, task.Request{Gateway: "api"})
	if err != nil || !a.Allow {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "payroll.read", Operation: "read", Resource: "erp://payroll/1"}, task.Request{Gateway: "api"}); err != nil {
		t.Fatal(err)
	}
	// A moment while the task is active, strictly between its activation
	// and its end.
	e.clk.Add(time.Millisecond)
	active = e.clk.Now()
	e.clk.Add(time.Millisecond)
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		t.Fatal(err)
	}
	return out.TaskID, jti, active
}

// backends returns the index databases to test: SQLite always (the
// ledger's own file, as the server uses it), PostgreSQL when
// WRIT_TEST_POSTGRES_DSN is set, each with a unique table prefix dropped
// after the test.
func backends(t *testing.T, e *ledgerEnv) map[string]*query.Index {
	t.Helper()
	out := map[string]*query.Index{}
	open := func(name string, db *sql.DB, d query.Dialect) {
		var b [4]byte
		rand.Read(b[:])
		ix, err := query.New(context.Background(), query.Config{DB: db, Store: e.store, Dialect: d, Prefix: "qt" + hex.EncodeToString(b[:]) + "_", Batch: 7})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { ix.Drop(context.Background()) })
		out[name] = ix
	}
	open("sqlite", e.store.DB(), query.SQLite)
	if dsn := os.Getenv(pgtest.EnvDSN); dsn != "" || os.Getenv("CI") != "" {
		dsn = pgtest.Base(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		open("postgres", db, query.Postgres)
	}
	return out
}

func TestIndex(t *testing.T) {
	e := newLedger(t)
	taskID, jti, active := e.story(t)
	ctx := context.Background()
	for name, ix := range backends(t, e) {
		t.Run(name, func(t *testing.T) {
			size, _ := e.store.Size(ctx)
			n, err := ix.CatchUp(ctx)
			if err != nil || n != size {
				t.Fatalf("CatchUp = %d, %v; the ledger holds %d", n, err, size)
			}
			all, err := ix.Events(ctx, query.Filter{Limit: query.MaxLimit})
			if err != nil || uint64(len(all.Events)) != size {
				t.Fatalf("all events: %d, %v", len(all.Events), err)
			}
			leaves, err := e.store.ReadLeaves(ctx, 0, size)
			if err != nil {
				t.Fatal(err)
			}
			for i, ev := range all.Events {
				if ev.Index != uint64(i) {
					t.Fatalf("event %d has index %d", i, ev.Index)
				}
				// Every envelope member comes back as the leaf has it.
				ent, err := ledger.ParseLeaf(uint64(i), leaves[i])
				if err != nil {
					t.Fatal(err)
				}
				l := ent.Event
				if !ev.Time.Equal(l.Time) || ev.Type != l.Type || ev.TaskID != l.TaskID || ev.Principal != l.Principal ||
					ev.Agent != l.Agent || ev.DecisionID != l.DecisionID || ev.PolicyVersion != l.PolicyVersion || ev.JTI != l.JTI {
					t.Errorf("event %d indexed as %+v; the leaf has %+v", i, ev, l)
				}
			}
			version := e.pol.Version()
			var decidedBy, atThird int
			for _, ev := range all.Events {
				if ev.PolicyVersion == version {
					decidedBy++
				}
				if ev.Time.Equal(all.Events[3].Time) {
					atThird++
				}
			}

			count := func(f query.Filter) int {
				t.Helper()
				p, err := ix.Events(ctx, f)
				if err != nil {
					t.Fatalf("Events(%+v): %v", f, err)
				}
				return len(p.Events)
			}
			tests := []struct {
				name string
				f    query.Filter
				want int
			}{
				{"by type", query.Filter{Type: ledger.TypeActionAuthorized}, 1},
				{"by decision", query.Filter{Decision: "deny", TaskID: taskID}, 1},
				{"by tool", query.Filter{Tool: "invoices.read"}, 2}, // the authorization and its completion
				{"by tool glob", query.Filter{Tool: "payroll.*"}, 1},
				{"by resource glob", query.Filter{Resource: "erp://invoices/*"}, 2},
				{"by agent and type", query.Filter{Agent: agent, Type: ledger.TypeCredentialIssued}, 1},
				{"by principal", query.Filter{Principal: alice.ID, Type: ledger.TypeTaskRequested}, 1},
				{"future", query.Filter{From: time.Now().Add(time.Hour)}, 0},
				{"nobody", query.Filter{Agent: "spiffe://example.org/agent/other"}, 0},
				{"like escapes", query.Filter{Tool: "invoices_read*"}, 0},
				{"by policy version", query.Filter{PolicyVersion: version}, decidedBy},
				{"an unknown policy version", query.Filter{PolicyVersion: "sha256:0"}, 0},
				{"at one instant", query.Filter{From: all.Events[3].Time, To: all.Events[3].Time}, atThird},
				{"from the far past to the far future", query.Filter{From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
					To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Limit: query.MaxLimit}, int(size)},
				{"by principal glob", query.Filter{Principal: "oidc:test#*", Type: ledger.TypeTaskRequested}, 1},
			}
			for _, tt := range tests {
				if got := count(tt.f); got != tt.want {
					t.Errorf("%s: %d events, want %d", tt.name, got, tt.want)
				}
			}

			// Pages of two walk the same events as one page.
			var walked []uint64
			f := query.Filter{TaskID: taskID, Limit: 2}
			for {
				p, err := ix.Events(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range p.Events {
					walked = append(walked, ev.Index)
				}
				if p.Next == "" {
					break
				}
				f.After = p.Next
			}
			if whole := count(query.Filter{TaskID: taskID}); len(walked) != whole || whole < 8 {
				t.Errorf("paged %d events, unpaged %d", len(walked), whole)
			}

			// The completed call is found by its tool, joined from its
			// authorization.
			p, _ := ix.Events(ctx, query.Filter{Type: ledger.TypeActionCompleted})
			if len(p.Events) != 1 || p.Events[0].Tool != "invoices.read" || p.Events[0].Resource != "erp://invoices/2026-Q3/17" {
				t.Errorf("completion row: %+v", p.Events)
			}

			who, err := ix.WhoApproved(ctx, "erp://invoices/2026-Q3/17", 0)
			if err != nil || len(who) != 1 || who[0].Approver != bob.ID || who[0].TaskID != taskID || who[0].Via != "task" {
				t.Errorf("WhoApproved = %+v, %v", who, err)
			}
			if who, _ := ix.WhoApproved(ctx, "erp://payroll/*", 0); len(who) != 0 {
				t.Errorf("approvals for a resource never reached: %+v", who)
			}

			uses, err := ix.Uses(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			want := []query.Use{
				{JTI: jti, TaskID: taskID, Agent: agent, Tool: "invoices.read", Resource: "erp://invoices/2026-Q3/17", Decision: "allow", Calls: 1, Environment: "prod"},
				{JTI: jti, TaskID: taskID, Agent: agent, Tool: "payroll.read", Resource: "erp://payroll/1", Decision: "deny", Calls: 1, Environment: "prod"},
			}
			if err != nil || !reflect.DeepEqual(uses, want) {
				t.Errorf("Uses = %+v, %v; want %+v", uses, err, want)
			}
			if uses, err := ix.Uses(ctx, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)); err != nil || len(uses) != 0 {
				t.Errorf("Uses(later) = %+v, %v", uses, err)
			}
			completed, _ := ix.Events(ctx, query.Filter{Type: ledger.TypeActionCompleted})
			if len(completed.Events) == 1 {
				idx, err := ix.ActionEvents(ctx, completed.Events[0].ActionID)
				auth, _ := ix.Events(ctx, query.Filter{Type: ledger.TypeActionAuthorized})
				if err != nil || len(idx) != 2 || len(auth.Events) != 1 || idx[0] != auth.Events[0].Index || idx[1] != completed.Events[0].Index {
					t.Errorf("ActionEvents = %v, %v", idx, err)
				}
			}

			acc, err := ix.ActiveAt(ctx, active, "")
			if err != nil || len(acc.Tasks) != 1 || acc.Tasks[0].TaskID != taskID || len(acc.Credentials) != 1 || acc.Credentials[0].JTI != jti {
				t.Errorf("ActiveAt(during) = %+v, %v", acc, err)
			}
			if acc, _ := ix.ActiveAt(ctx, time.Now().Add(time.Minute), ""); len(acc.Tasks) != 0 || len(acc.Credentials) != 0 {
				t.Errorf("ActiveAt(after completion) = %+v", acc)
			}
			if acc, _ := ix.ActiveAt(ctx, active, "spiffe://example.org/agent/other"); len(acc.Tasks) != 0 {
				t.Errorf("ActiveAt(other agent) = %+v", acc)
			}

			tree, err := ix.TaskTree(ctx, taskID)
			if err != nil || len(tree) != 1 {
				t.Errorf("TaskTree = %v, %v", tree, err)
			}

			if _, err := ix.Events(ctx, query.Filter{Limit: query.MaxLimit + 1}); err == nil {
				t.Error("a page larger than the limit was accepted")
			}
			if _, err := ix.Events(ctx, query.Filter{After: "x"}); err == nil {
				t.Error("a bad cursor was accepted")
			}
		})
	}
}

// TestCatchUpIdempotent replays leaves already indexed, as a crash between
// commit and a second tailer would: nothing changes and nothing fails.
func TestCatchUpIdempotent(t *testing.T) {
	e := newLedger(t)
	e.story(t)
	ctx := context.Background()
	for name, a := range backends(t, e) {
		t.Run(name, func(t *testing.T) {
			if _, err := a.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			before, _ := a.Events(ctx, query.Filter{Limit: query.MaxLimit})
			if err := a.ResetThrough(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if _, err := a.CatchUp(ctx); err != nil {
				t.Fatalf("re-indexing: %v", err)
			}
			after, _ := a.Events(ctx, query.Filter{Limit: query.MaxLimit})
			if len(before.Events) != len(after.Events) {
				t.Errorf("re-indexing changed the index: %d → %d events", len(before.Events), len(after.Events))
			}
			// New leaves are picked up.
			e.story(t)
			n, err := a.CatchUp(ctx)
			size, _ := e.store.Size(ctx)
			if err != nil || n != size {
				t.Errorf("CatchUp after growth = %d, %v; size %d", n, err, size)
			}
		})
	}
}

func TestDialectOf(t *testing.T) {
	e := newLedger(t)
	if d := query.DialectOf(e.store.DB()); d != query.SQLite {
		t.Errorf("SQLite handle: %s", d)
	}
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if d := query.DialectOf(db); d != query.Postgres {
		t.Errorf("pgx handle: %s", d)
	}
}

// TestLargeBacklogAnswersAtOnce: with more backlog than a query should wait
// for, the query answers from what is indexed and says how far that is.
func TestLargeBacklogAnswersAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 60,000 events")
	}
	e := newLedger(t)
	fillT(t, e.led, 60000)
	ctx := context.Background()
	ix, err := query.New(ctx, query.Config{DB: e.store.DB(), Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ix.Events(ctx, query.Filter{})
	if err != nil || p.IndexedThrough != 0 || len(p.Events) != 0 {
		t.Fatalf("first query over a large backlog: through %d, %d events, %v", p.IndexedThrough, len(p.Events), err)
	}
	size, _ := e.store.Size(ctx)
	if n, err := ix.CatchUp(ctx); err != nil || n != size {
		t.Fatalf("CatchUp = %d, %v", n, err)
	}
	p, _ = ix.Events(ctx, query.Filter{})
	if p.IndexedThrough != size || len(p.Events) != 100 {
		t.Errorf("after catching up: through %d of %d, %d events", p.IndexedThrough, size, len(p.Events))
	}
}

func fillT(t *testing.T, led *ledger.Ledger, n int) {
	t.Helper()
	events := make([]ledger.Event, 0, 4096)
	for i := 0; i < n; i++ {
		events = append(events, ledger.Event{Type: "import.test.filler", TaskID: "tsk_filler"})
		if len(events) == cap(events) || i == n-1 {
			if _, err := led.AppendAll(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			events = events[:0]
		}
	}
}

// TestTwoTailersOneIndex: replicas on one PostgreSQL share the index; two
// tailers catching up at once index every event once and agree on how far
// the index goes.
func TestTwoTailersOneIndex(t *testing.T) {
	dsn := pgtest.Base(t)
	e := newLedger(t)
	fillT(t, e.led, 2000)
	ctx := context.Background()
	var b [4]byte
	rand.Read(b[:])
	prefix := "qt" + hex.EncodeToString(b[:]) + "_"
	var ixs []*query.Index
	for range 2 {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ix, err := query.New(ctx, query.Config{DB: db, Store: e.store, Dialect: query.Postgres, Prefix: prefix, Batch: 100})
		if err != nil {
			t.Fatal(err)
		}
		ixs = append(ixs, ix)
	}
	t.Cleanup(func() { ixs[0].Drop(context.Background()) })
	size, _ := e.store.Size(ctx)
	errs := make(chan error, 2)
	for _, ix := range ixs {
		go func() {
			n, err := ix.CatchUp(ctx)
			if err == nil && n != size {
				err = fmt.Errorf("caught up to %d of %d", n, size)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, ix := range ixs {
		if n, err := ix.Through(ctx); err != nil || n != size {
			t.Errorf("tailer %d: through %d, %v; want %d", i, n, err, size)
		}
	}
	p, err := ixs[1].Events(ctx, query.Filter{Limit: 1000, TaskID: "tsk_filler"})
	if err != nil || len(p.Events) != 1000 {
		t.Errorf("events of the filler task: %d, %v", len(p.Events), err)
	}
}

// An index handed the ledger's commits (Follower().Committed) indexes them
// without reading their leaves back, and ends up exactly as one built from
// the store alone; events it was not handed (from before, or past what it
// holds) it reads from the store.
func TestIndexFromCommits(t *testing.T) {
	e := newLedger(t)
	ctx := context.Background()
	e.story(t) // before the index is told of commits: read from the store
	before, _ := e.store.Size(ctx)
	open := func(prefix string, st ledger.Store) *query.Index {
		ix, err := query.New(ctx, query.Config{DB: e.store.DB(), Store: st, Prefix: prefix, Batch: 7})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Drop(context.Background()) })
		return ix
	}
	fedStore := &testkit.CountingStore{Store: e.store}
	fed := open("qfed_", fedStore)
	plain := open("qplain_", e.store)
	hook := func(first uint64, events []ledger.Event, leaves [][]byte) {
		fed.Follower().Committed(first, events, leaves, nil)
	}
	e.committed.Store(&hook)
	for range 3 {
		e.story(t)
	}
	size, _ := e.store.Size(ctx)
	for name, ix := range map[string]*query.Index{"fed": fed, "plain": plain} {
		if n, err := ix.CatchUp(ctx); err != nil || n != size {
			t.Fatalf("%s: CatchUp = %d, %v; the ledger holds %d", name, n, err, size)
		}
	}
	if got := fedStore.Read.Load(); got != int64(before) {
		t.Errorf("the index read %d leaves back from the store; want only the %d committed before it was told", got, before)
	}
	a, err := fed.Events(ctx, query.Filter{Limit: query.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Events(ctx, query.Filter{Limit: query.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(a.Events)) != size || !reflect.DeepEqual(a, b) {
		t.Fatalf("indexed from commits:\n%+v\nfrom the store:\n%+v", a, b)
	}
	for _, f := range []query.Filter{{Tool: "invoices.read"}, {Decision: "deny"}, {Type: ledger.TypeCredentialRevoked}} {
		f.Limit = query.MaxLimit
		x, _ := fed.Events(ctx, f)
		y, _ := plain.Events(ctx, f)
		if len(x.Events) == 0 || !reflect.DeepEqual(x, y) {
			t.Errorf("filter %+v: from commits %d events, from the store %d", f, len(x.Events), len(y.Events))
		}
	}
}

// TestOtherLayouts opens an index whose tables have the layout before
// names were numbered: it is dropped and rebuilt from the ledger. One of a
// newer layout is refused rather than changed.
func TestOtherLayouts(t *testing.T) {
	e := newLedger(t)
	taskID, _, _ := e.story(t)
	ctx := context.Background()
	db := e.store.DB()
	for _, stmt := range []string{
		`CREATE TABLE old_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`INSERT INTO old_meta (key, value) VALUES ('through', 3)`,
		`CREATE TABLE old_events (idx BIGINT PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL, task_id TEXT NOT NULL)`,
		`INSERT INTO old_events VALUES (0, '2026-01-01T00:00:00.000000000Z', 'task.requested', 'tsk_x')`,
		`CREATE TABLE old_tasks (task_id TEXT PRIMARY KEY)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := query.New(ctx, query.Config{DB: db, Store: e.store, Prefix: "old_"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Drop(context.Background()) })
	if n, err := ix.Through(ctx); err != nil || n != 0 {
		t.Fatalf("Through = %d, %v after a change of layout; want 0", n, err)
	}
	size, _ := e.store.Size(ctx)
	if n, err := ix.CatchUp(ctx); err != nil || n != size {
		t.Fatalf("CatchUp = %d, %v; the ledger holds %d", n, err, size)
	}
	p, err := ix.Events(ctx, query.Filter{TaskID: taskID, Type: ledger.TypeTaskRequested})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("the rebuilt index: %+v, %v", p.Events, err)
	}
	if p, _ := ix.Events(ctx, query.Filter{TaskID: "tsk_x"}); len(p.Events) != 0 {
		t.Errorf("a row of the old layout survived: %+v", p.Events)
	}
	// Opened again, the index is kept.
	if _, err := query.New(ctx, query.Config{DB: db, Store: e.store, Prefix: "old_"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Through(ctx); n != size {
		t.Errorf("Through = %d after opening again; want %d", n, size)
	}

	if _, err := db.ExecContext(ctx, `UPDATE old_meta SET value = 99 WHERE key = 'schema'`); err != nil {
		t.Fatal(err)
	}
	if _, err := query.New(ctx, query.Config{DB: db, Store: e.store, Prefix: "old_"}); err == nil {
		t.Error("an index of a newer layout was opened")
	}
}
