package retention_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/retention"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// allowAll opens every task and allows every call.
const allowAll = `package writ

decision := {"deny": set(), "approval": set(), "permit": {{"id": "allow-all"}}}
`

const (
	agent = "spiffe://writ.test/agent/retention"
	day   = 24 * time.Hour
)

var (
	alice   = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#alice", Roles: []identity.Role{identity.RoleRequester}}
	auditor = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#audrey", Roles: []identity.Role{identity.RoleAuditor}}
	admin   = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#root", Roles: []identity.Role{identity.RoleAdmin}}
)

// store is a ledger store that keeps cursors and gives its database.
type store interface {
	ledger.Store
	ledger.Cursors
	DB() *sql.DB
}

// world is writ's ledger, policy and task service on SQLite (or
// PostgreSQL), with a clock the test moves.
type world struct {
	t     *testing.T
	ctx   context.Context
	store store
	led   *ledger.Ledger
	kp    *ledger.KeyPair
	svc   *task.Service
	clk   *testkit.Clock
}

func newWorld(t *testing.T) *world { return newWorldOn(t, "") }

// newWorldOn is newWorld on the PostgreSQL database dsn, when not empty.
func newWorldOn(t *testing.T, dsn string) *world {
	t.Helper()
	// The clock starts ahead of the real one, which stamps the policy's
	// load: the log stays in time order.
	w := &world{t: t, ctx: context.Background(), clk: testkit.NewClock(time.Now().UTC().Add(time.Minute).Truncate(time.Second))}
	dir := t.TempDir()
	var err error
	if dsn != "" {
		w.store, err = postgres.Open(w.ctx, dsn, postgres.Options{})
	} else {
		w.store, err = sqlite.Open(w.ctx, filepath.Join(dir, "writ.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if w.kp, _, err = ledger.LoadOrCreateKey(dir, "writ.test/retention"); err != nil {
		t.Fatal(err)
	}
	if w.led, err = ledger.New(w.ctx, ledger.Config{Store: w.store, Signer: w.kp, Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, "policy")
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "writ.rego"), []byte(allowAll), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(w.ctx, policy.Config{Dir: pdir, Recorder: w.led, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = task.New(w.ctx, task.Config{Ledger: w.led, Eraser: w.led, Store: w.store, Policy: pol, DB: w.store.DB(),
		Environment: "prod", Now: w.clk.Now, SweepInterval: -1, Origin: w.kp.Name(), Verifier: w.kp.Verifier(), DigestKey: w.kp.DigestKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.svc.Close()
		pol.Close()
		w.led.Close(w.ctx)
		w.store.Close()
	})
	return w
}

func (w *world) enforcer(rules ...retention.Rule) *retention.Enforcer {
	w.t.Helper()
	e, err := retention.New(retention.Config{Rules: rules, Minimum: 180 * day, MinimumText: "180d",
		Store: w.store, Cursors: w.store, Tasks: w.svc, Now: w.clk.Now, Batch: 3})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// call is one tool call's output: the index of its action.completed.
type call struct {
	task   string
	result uint64
}

// run opens a task (a child of parent, when set) and makes one call of
// each data class named, each with an output; it returns the task and
// the calls' results.
func (w *world) run(class string, parent *string, calls ...string) (string, []call) {
	w.t.Helper()
	s := api.Scope{Tools: []string{"files.*"}, Resources: []string{"file://share/*"}, Operations: []string{"read"},
		DataClass: class, Environments: []string{"prod"}}
	out, err := w.svc.Open(w.ctx, alice, api.OpenTask{Agent: agent, Intent: "read the shared files", Scope: s, TTL: "1h", Parent: parent})
	if err != nil || out.State != api.StateActive {
		w.t.Fatalf("opening a task: %+v %v", out, err)
	}
	jti := "jti-" + out.TaskID
	exp := w.clk.Now().Add(30 * time.Minute)
	if err := w.svc.RecordCredential(w.ctx, task.Credential{JTI: jti, TaskID: out.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", "sha256:x"); err != nil {
		w.t.Fatal(err)
	}
	cred := task.VerifiedCredential{JTI: jti, TaskID: out.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	var res []call
	for i, c := range calls {
		a, err := w.svc.Authorize(w.ctx, cred, api.Authorize{Tool: "files.read", Operation: "read", Resource: "file://share/" + c,
			Arguments: json.RawMessage(`{"n":1}`), DataClass: c}, task.Request{Gateway: "api"})
		if err != nil || !a.Allow {
			w.t.Fatalf("call %d: %+v %v", i, a, err)
		}
		r, err := w.svc.RecordResult(w.ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"rows":3}`)})
		if err != nil {
			w.t.Fatal(err)
		}
		res = append(res, call{task: out.TaskID, result: r.LedgerIndex})
	}
	return out.TaskID, res
}

func (w *world) stored(i uint64, name string) bool {
	w.t.Helper()
	_, err := w.store.ReadBody(w.ctx, ledger.BodyRef{Index: i, Name: name})
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		w.t.Fatal(err)
	}
	return err == nil
}

// erasures returns the ledger's ledger.body_erased events.
func (w *world) erasures() []ledger.ErasedBody {
	w.t.Helper()
	var out []ledger.ErasedBody
	err := w.store.ScanLeaves(w.ctx, 0, func(i uint64, leaf []byte) error {
		ent, err := ledger.ParseLeaf(i, leaf)
		if err != nil || ent.Event.Type != ledger.TypeBodyErased {
			return err
		}
		d, err := event.Decode(ent.Event)
		out = append(out, d.(event.BodyErased))
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) sweep(e *retention.Enforcer) retention.Result {
	w.t.Helper()
	res, err := e.Sweep(w.ctx)
	if err != nil {
		w.t.Fatalf("sweep: %v", err)
	}
	return res
}

// TestRetention runs the rules over a ledger with a clock the test moves:
// nothing is erased before its period or the minimum; a due body is
// erased once, as a recorded erasure that verifies; a held task and its
// children are left until the hold is lifted; rules are tried in order.
func TestRetention(t *testing.T) {
	w := newWorld(t)
	plain, plainCalls := w.run("confidential", nil, "confidential", "internal")
	held, heldCalls := w.run("confidential", nil, "confidential")
	child, childCalls := w.run("confidential", &held, "confidential")
	if _, err := w.svc.Hold(w.ctx, auditor, held, "litigation 2026-14"); err != nil {
		t.Fatal(err)
	}
	e := w.enforcer(
		retention.Rule{Type: ledger.TypeActionCompleted, Body: "output", DataClass: "confidential", Keep: 180 * day, KeepText: "180d"},
		retention.Rule{Type: ledger.TypeActionCompleted, Keep: 365 * day, KeepText: "1y"},
		retention.Rule{Type: ledger.TypeTaskRequested, Body: "intent", Keep: 2 * 365 * day, KeepText: "2y"},
	)
	confidential := []call{plainCalls[0], heldCalls[0], childCalls[0]}
	dueMonth := w.clk.Now().Add(180 * day).Format("2006-01")

	w.clk.Add(179 * day)
	if res := w.sweep(e); res.Erased != 0 {
		t.Fatalf("before the period: %+v", res)
	}
	plan, err := e.Plan(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := plan.Rules[0].Schedule; len(s) != 1 || s[0].Count != 3 || s[0].Month != dueMonth {
		t.Errorf("schedule of the first rule: %+v", s)
	}
	if s := plan.Rules[1].Schedule; len(s) != 1 || s[0].Count != 1 || s[0].FirstEvent != plainCalls[1].result {
		t.Errorf("schedule of the second rule: %+v", s)
	}
	if len(plan.Holds) != 1 || !slices.Equal(plan.Holds[0].Covers, []string{held, child}) {
		t.Errorf("holds: %+v", plan.Holds)
	}

	w.clk.Add(2 * day)
	if res := w.sweep(e); res.Erased != 1 || res.Held != 2 {
		t.Fatalf("past the period: %+v, want 1 erased and 2 held", res)
	}
	for _, c := range confidential {
		if want := c.task == plain; w.stored(c.result, "output") == want {
			t.Errorf("output of %d (task %s): stored %v", c.result, c.task, !want)
		}
	}
	if !w.stored(plainCalls[1].result, "output") {
		t.Error("an internal output was erased by the confidential rule")
	}
	got := w.erasures()
	if len(got) != 1 || got[0].Index != plainCalls[0].result || got[0].Reason != ledger.ReasonRetention ||
		got[0].Retention == nil || *got[0].Retention != (ledger.RetentionRule{Type: ledger.TypeActionCompleted, Body: "output", DataClass: "confidential", Keep: "180d", Minimum: "180d"}) {
		t.Fatalf("erasures: %+v", got)
	}
	plan, err = e.Plan(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := plan.Rules[0]; r.Due.Count != 0 || r.Held.Count != 2 || !slices.Equal(r.Held.Events, []uint64{heldCalls[0].result, childCalls[0].result}) {
		t.Errorf("plan of the first rule after a sweep: %+v", r)
	}
	if plan.Holds[0].Kept.Count != 2 {
		t.Errorf("the hold keeps %+v", plan.Holds[0].Kept)
	}

	// Exactly once: sweeping again erases nothing more.
	if res := w.sweep(e); res.Erased != 0 {
		t.Fatalf("a second sweep: %+v", res)
	}
	// A manual erasure of a held body is refused, unless forced.
	if _, err := w.svc.EraseBody(w.ctx, admin, ledger.BodyRef{Index: childCalls[0].result, Name: "output"}, "request 9", false); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("erasing a held body: %v", err)
	}

	// Lifting the hold lets the next sweep erase what it kept.
	if _, err := w.svc.Release(w.ctx, auditor, held, "case closed"); err != nil {
		t.Fatal(err)
	}
	if res := w.sweep(e); res.Erased != 2 {
		t.Fatalf("after the release: %+v", res)
	}
	if res := w.sweep(e); res.Erased != 0 {
		t.Fatalf("a second sweep after the release: %+v", res)
	}

	// The internal output falls to the second rule after a year, the
	// intents to the third after two.
	w.clk.Add(185 * day)
	if res := w.sweep(e); res.Erased != 1 || w.stored(plainCalls[1].result, "output") {
		t.Fatalf("after a year: %+v", res)
	}
	for _, id := range []string{plain, held, child} {
		tk, _ := w.svc.Get(id)
		if !w.stored(tk.RequestedIndex, "intent") {
			t.Errorf("the intent of %s was erased before two years", id)
		}
	}
	w.clk.Add(365 * day)
	if res := w.sweep(e); res.Erased != 3 {
		t.Fatalf("after two years: %+v", res)
	}
	if n := len(w.erasures()); n != 7 {
		t.Fatalf("%d erasures recorded, want 7", n)
	}

	// Every erasure verifies: the tree is whole and each missing body has
	// its recorded erasure.
	rep, err := ledger.Verify(w.ctx, w.store, w.kp.Verifier(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Erased != 7 {
		t.Fatalf("ledger verify: erased %d, failures %v", rep.Erased, rep.Failures)
	}
}

// TestRetentionMinimum refuses a rule shorter than the minimum (the
// configuration refuses it first, docs/retention.md).
func TestRetentionMinimum(t *testing.T) {
	w := newWorld(t)
	_, err := retention.New(retention.Config{Minimum: 180 * day, Store: w.store, Cursors: w.store, Tasks: w.svc,
		Rules: []retention.Rule{{Type: ledger.TypeActionCompleted, Keep: 30 * day, KeepText: "30d"}}})
	if err == nil {
		t.Fatal("a rule of 30 days under a minimum of 180 was accepted")
	}
}

// TestRetentionAfterRestart resumes from the rules' cursors: a new
// enforcer with the same rules erases nothing twice, and one whose rules
// changed looks at the log again.
func TestRetentionAfterRestart(t *testing.T) {
	w := newWorld(t)
	_, calls := w.run("internal", nil, "internal", "internal")
	rule := retention.Rule{Type: ledger.TypeActionCompleted, Body: "output", Keep: 200 * day, KeepText: "200d"}
	w.clk.Add(201 * day)
	if res := w.sweep(w.enforcer(rule)); res.Erased != 2 {
		t.Fatalf("first sweep: %+v", res)
	}
	if res := w.sweep(w.enforcer(rule)); res.Erased != 0 {
		t.Fatalf("a new enforcer: %+v", res)
	}
	longer := rule
	longer.Keep, longer.KeepText = 190*day, "190d"
	if res := w.sweep(w.enforcer(longer)); res.Erased != 0 {
		t.Fatalf("changed rules: %+v", res)
	}
	if n := len(w.erasures()); n != 2 || w.stored(calls[0].result, "output") {
		t.Fatalf("%d erasures", n)
	}
}

// TestRetentionOnPostgres sweeps a PostgreSQL ledger, one process at a
// time: while another holds the retention lock, a sweep does nothing.
func TestRetentionOnPostgres(t *testing.T) {
	w := newWorldOn(t, pgtest.DSN(t))
	pg := w.store.(*postgres.Store)
	_, calls := w.run("internal", nil, "internal")
	rule := retention.Rule{Type: ledger.TypeActionCompleted, Body: "output", Keep: 200 * day, KeepText: "200d"}
	e, err := retention.New(retention.Config{Rules: []retention.Rule{rule}, Minimum: 180 * day,
		Store: w.store, Cursors: w.store, Tasks: w.svc, Locker: pg, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.clk.Add(201 * day)
	_, unlock, ok, err := pg.TryLock(w.ctx, retention.LockName)
	if err != nil || !ok {
		t.Fatalf("taking the retention lock: %v %v", ok, err)
	}
	if res := w.sweep(e); !res.Skipped || res.Erased != 0 {
		t.Fatalf("a sweep while another process holds the lock: %+v", res)
	}
	unlock()
	if res := w.sweep(e); res.Skipped || res.Erased != 1 || w.stored(calls[0].result, "output") {
		t.Fatalf("a sweep holding the lock: %+v", res)
	}
	if res := w.sweep(e); res.Erased != 0 {
		t.Fatalf("a second sweep: %+v", res)
	}
	rep, err := ledger.Verify(w.ctx, w.store, w.kp.Verifier(), "")
	if err != nil || !rep.OK() || rep.Erased != 1 {
		t.Fatalf("ledger verify: %v %+v", err, rep.Failures)
	}
}

// lockWatch is a Locker that remembers the lock it gave last, so that a
// test can wait for the lock's loss as the enforcer sees it.
type lockWatch struct {
	*postgres.Store
	held chan context.Context
}

func (l *lockWatch) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	held, unlock, ok, err := l.Store.TryLock(ctx, name)
	if ok {
		l.held <- held
	}
	return held, unlock, ok, err
}

// eraseHook runs after each erasure the enforcer asks for.
type eraseHook struct {
	retention.Tasks
	after func(ctx context.Context)
}

func (e eraseHook) EraseUnheld(ctx context.Context, xs []task.BodyErasure) ([]task.BodyErasure, []task.BodyErasure, error) {
	erased, held, err := e.Tasks.EraseUnheld(ctx, xs)
	e.after(ctx)
	return erased, held, err
}

// TestRetentionLostLock: a sweep whose replicas' lock is lost halfway
// stops there without moving its cursor past what it did, and the next
// holder erases the rest, each body once.
func TestRetentionLostLock(t *testing.T) {
	dsn := pgtest.DSN(t)
	w := newWorldOn(t, dsn)
	pg := w.store.(*postgres.Store)
	_, calls := w.run("internal", nil, "internal", "internal", "internal", "internal", "internal", "internal")
	rule := retention.Rule{Type: ledger.TypeActionCompleted, Body: "output", Keep: 200 * day, KeepText: "200d"}
	locks := &lockWatch{Store: pg, held: make(chan context.Context, 4)}
	var held context.Context
	hook := eraseHook{Tasks: w.svc, after: func(ctx context.Context) {
		if held != nil {
			return
		}
		held = <-locks.held
		pgtest.TerminateLockHolder(t, dsn, pg.LockKey(retention.LockName))
		for _, c := range []context.Context{held, ctx} {
			select {
			case <-c.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("the sweep did not see its lock lost")
			}
		}
	}}
	cfg := retention.Config{Rules: []retention.Rule{rule}, Minimum: 180 * day, MinimumText: "180d",
		Store: w.store, Cursors: w.store, Tasks: hook, Locker: locks, Now: w.clk.Now, Batch: 3}
	first, err := retention.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.clk.Add(201 * day)
	res, err := first.Sweep(w.ctx)
	if held == nil || context.Cause(held) == nil || !errors.Is(err, context.Cause(held)) {
		t.Fatalf("a sweep that lost its lock: %+v, %v; want the lock's loss", res, err)
	}
	if res.Erased == 0 || res.Erased >= len(calls) {
		t.Fatalf("the sweep that lost its lock erased %d of %d bodies; want it stopped halfway", res.Erased, len(calls))
	}
	cfg.Tasks = w.svc
	next, err := retention.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res := w.sweep(next); res.Skipped || res.Erased != len(calls)-first.Last().Erased {
		t.Fatalf("the next holder's sweep: %+v; want the %d bodies left", res, len(calls)-first.Last().Erased)
	}
	for _, c := range calls {
		if w.stored(c.result, "output") {
			t.Errorf("the output at %d is still stored", c.result)
		}
	}
	seen := map[ledger.BodyRef]bool{}
	for _, x := range w.erasures() {
		ref := ledger.BodyRef{Index: x.Index, Name: x.Name}
		if seen[ref] {
			t.Errorf("%+v erased twice", ref)
		}
		seen[ref] = true
	}
	if len(seen) != len(calls) {
		t.Errorf("%d erasures recorded, want %d", len(seen), len(calls))
	}
	rep, err := ledger.Verify(w.ctx, w.store, w.kp.Verifier(), "")
	if err != nil || !rep.OK() || rep.Erased != len(calls) {
		t.Fatalf("ledger verify: %v %+v", err, rep.Failures)
	}
}
