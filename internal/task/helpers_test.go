package task_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/refusal"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// failingStore is a real SQLite store whose Commit can be made to fail, as
// a full disk or a locked database would.
type failingStore struct {
	*sqlite.Store
	fail atomic.Bool
	// failBatches fails reading bodies in batches, as a start from the
	// snapshot does.
	failBatches atomic.Bool
}

func (f *failingStore) ReadBodyBatch(ctx context.Context, name string, indexes []uint64, fn func(ledger.Body) error) error {
	if f.failBatches.Load() {
		return errors.New("connection reset")
	}
	return f.Store.ReadBodyBatch(ctx, name, indexes, fn)
}

func (f *failingStore) Commit(ctx context.Context, b *ledger.Batch) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Store.Commit(ctx, b)
}

// env is a service on a real SQLite ledger with the default policy pack.
type env struct {
	t     testing.TB
	dir   string
	env   string
	store *failingStore
	led   *ledger.Ledger
	kp    *ledger.KeyPair
	pol   *policy.Policy
	svc   *task.Service
	clk   *testkit.Clock
	// failBodyBatches opens the store failing batched body reads.
	failBodyBatches bool
}

var sharedPolicy struct {
	once sync.Once
	p    *policy.Policy
	err  error
}

// defaultPolicy compiles the default pack once for the whole package.
func defaultPolicy(t testing.TB) *policy.Policy {
	sharedPolicy.once.Do(func() {
		sharedPolicy.p, sharedPolicy.err = policy.New(context.Background(), policy.Config{})
	})
	if sharedPolicy.err != nil {
		t.Fatalf("policy.New: %v", sharedPolicy.err)
	}
	return sharedPolicy.p
}

func newEnv(t testing.TB, environment string) *env {
	t.Helper()
	return newEnvPolicy(t, environment, nil)
}

// newEnvPolicy is newEnv deciding with pol (nil: the default pack).
func newEnvPolicy(t testing.TB, environment string, pol *policy.Policy) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir(), environment, pol)
}

// newEnvIn is newEnvPolicy on dir, which may already hold a ledger.
func newEnvIn(t testing.TB, dir, environment string, pol *policy.Policy) *env {
	t.Helper()
	e := &env{t: t, dir: dir, env: environment, pol: pol,
		clk: testkit.NewClock(time.Now().UTC().Truncate(time.Second))}
	if err := e.open(task.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// open opens store, ledger and service on e.dir with extra's settings and
// returns task.New's error.
func (e *env) open(extra task.Config) error {
	t := e.t
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(e.dir, "writ.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.store = &failingStore{Store: st}
	e.store.failBatches.Store(e.failBodyBatches)
	kp, _, err := ledger.LoadOrCreateKey(e.dir, "writ.test/log")
	if err != nil {
		t.Fatal(err)
	}
	e.kp = kp
	// A zero CheckpointInterval signs a checkpoint with every batch.
	e.led, err = ledger.New(ctx, ledger.Config{Store: e.store, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	if e.pol == nil {
		e.pol = defaultPolicy(t)
	}
	cfg := extra
	cfg.Ledger, cfg.Eraser, cfg.Store, cfg.Policy, cfg.DB = e.led, e.led, e.store, e.pol, st.DB()
	cfg.Environment, cfg.Now, cfg.SweepInterval = e.env, e.clk.Now, -1
	cfg.Origin, cfg.Verifier, cfg.DigestKey = kp.Name(), kp.Verifier(), kp.DigestKey()
	e.svc, err = task.New(ctx, cfg)
	if err != nil {
		e.closeParts()
		e.led, e.store = nil, nil
		return err
	}
	return nil
}

func (e *env) closeParts() {
	if e.led != nil {
		e.led.Close(context.Background())
	}
	if e.store != nil {
		e.store.Store.Close()
	}
}

func (e *env) close() {
	if e.svc != nil {
		e.svc.Close()
	}
	e.closeParts()
	e.svc, e.led, e.store = nil, nil, nil
}

// reopen closes everything and opens again on the same directory.
func (e *env) reopen(extra task.Config) error {
	e.close()
	return e.open(extra)
}

func human(id string, roles ...identity.Role) identity.Principal {
	return identity.Principal{Kind: identity.KindHuman, ID: id, Roles: roles}
}

var (
	alice = human("oidc:test#alice", identity.RoleRequester)
	bob   = human("oidc:test#bob", identity.RoleApprover)
	carol = human("oidc:test#carol", identity.RoleApprover)
	admin = human("oidc:test#admin", identity.RoleAdmin)
)

const agent = "spiffe://example.org/agent/summarizer"

func scope(class string, envs ...string) api.Scope {
	return api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*"},
		Operations: []string{"read", "send"}, DataClass: class, Environments: envs}
}

func (e *env) openTask(who identity.Principal, s api.Scope, parent *string) api.TaskOpened {
	e.t.Helper()
	out, err := e.svc.Open(context.Background(), who, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices", Scope: s, TTL: "15m", Parent: parent})
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return out
}

// credential records a credential for an active task and returns it as the
// credential layer would after verifying the token.
func (e *env) credential(taskID string) task.VerifiedCredential {
	e.t.Helper()
	jti := "jti-" + taskID + "-" + time.Now().Format("150405.000000000")
	exp := e.clk.Now().Add(5 * time.Minute)
	if err := e.svc.RecordCredential(context.Background(), task.Credential{JTI: jti, TaskID: taskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", "sha256:x"); err != nil {
		e.t.Fatalf("RecordCredential: %v", err)
	}
	return task.VerifiedCredential{JTI: jti, TaskID: taskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
}

func code(err error) string {
	var te *refusal.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

// indexFinder finds an action's events through a query index of e's
// ledger, opened beside it for each lookup.
func indexFinder(e *env) task.ActionFinder {
	return func(ctx context.Context, id string, fresh bool) ([]uint64, error) {
		w, r, err := query.OpenSQLite(filepath.Join(e.dir, query.SQLiteFile))
		if err != nil {
			return nil, err
		}
		defer w.Close()
		defer r.Close()
		ix, err := query.New(ctx, query.Config{DB: w, ReadDB: r, Store: e.store, Dialect: query.SQLite})
		if err != nil {
			return nil, err
		}
		if fresh {
			return ix.ActionEventsFresh(ctx, id)
		}
		return ix.ActionEvents(ctx, id)
	}
}

// indexedCalls opens e again with a finder over its query index, opens two
// tasks, and authorizes n calls under the first, leaving them in flight;
// it returns the first task, both tasks' credentials and the calls' IDs.
func (e *env) indexedCalls(n int) (out api.TaskOpened, cred, otherCred task.VerifiedCredential, ids []string) {
	e.t.Helper()
	if err := e.reopen(task.Config{FindAction: indexFinder(e)}); err != nil {
		e.t.Fatal(err)
	}
	out = e.openTask(alice, scope("internal", "dev"), nil)
	cred = e.credential(out.TaskID)
	other := e.openTask(alice, scope("internal", "dev"), nil)
	otherCred = e.credential(other.TaskID)
	for range n {
		a, err := e.svc.Authorize(context.Background(), cred, call("invoices.read", "erp://invoices/2026-Q3/17", `{}`), task.Request{Gateway: policy.GatewayAPI})
		if err != nil || !a.Allow {
			e.t.Fatalf("authorize: %+v %v", a, err)
		}
		ids = append(ids, a.ActionID)
	}
	return out, cred, otherCred, ids
}
