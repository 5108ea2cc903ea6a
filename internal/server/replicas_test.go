package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/task"
)

// postgresConfig is a dev server's configuration on a fresh PostgreSQL
// schema; the data directory holds only the replica's local files.
func postgresConfig(t *testing.T, dsn, dir string) config.Config {
	cfg := servertest.Dev(dir, "dev")
	cfg.Store, cfg.DSN = config.StorePostgres, dsn
	return cfg
}

func startPostgres(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	ts := serve(t, cfg)
	ts.token = devToken(t, cfg.DataDir, identity.RoleAdmin, identity.RoleAuditor)
	return ts
}

// verifyPostgres verifies the ledger in the database and its projection
// tables.
func verifyPostgres(t *testing.T, dsn string) *ledger.Report {
	t.Helper()
	d := openDir(t, t.TempDir(), datadir.Options{Store: datadir.StorePostgres, DSN: dsn})
	defer d.Close()
	rep := verifyLedger(t, d)
	diffs, err := task.CheckProjections(context.Background(), d.Store, d.Store.DB())
	if err != nil || len(diffs) > 0 {
		t.Fatalf("projection tables: %v %v", diffs, err)
	}
	return rep
}

// TestPostgresStore runs a server on PostgreSQL: the ledger API, the
// tlog-tiles client, a task's whole decision flow, and a restart.
func TestPostgresStore(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ts := startPostgres(t, postgresConfig(t, dsn, dir))
	if _, err := os.Stat(filepath.Join(dir, datadir.LockFile)); err == nil {
		t.Error("a PostgreSQL server locked its data directory")
	}
	acked := appendMany(t, ts, "pg", 600)
	c := newTLogClient(t, ts)
	// The server's own events (ledger.started, policy.loaded) share the
	// log, so the appends' indexes run past len(acked): wait for the last.
	cp, _ := c.checkpointAtLeast(t, slices.Max(slices.Collect(maps.Keys(acked)))+1)
	leaves := c.leaves(t, cp.Size)
	for idx, id := range acked {
		e, err := ledger.ParseLeaf(idx, leaves[idx])
		if err != nil || e.Event.TaskID != id {
			t.Fatalf("entry %d: %v %q, acknowledged %q", idx, err, e.Event.TaskID, id)
		}
	}
	if got := merkleRoot(leaves); string(got) != string(cp.Hash) {
		t.Error("root of the fetched entries differs from the checkpoint")
	}

	// Every committed batch waited for and held the log's head lock, and
	// both are in /metrics.
	fams := scrape(t, ts.url+"/metrics", ts.token)
	batches := mustSample(t, fams, "writ_ledger_commit_batch_events")
	for _, name := range []string{"writ_ledger_lock_wait_seconds", "writ_ledger_lock_held_seconds"} {
		if n := mustSample(t, fams, name); batches < 1 || n < batches {
			t.Errorf("%s count %v, committed batches %v", name, n, batches)
		}
	}

	alice := devTokenFor(t, ts, "alice", identity.RoleRequester)
	opened := openTask(t, ts, alice, agentA, invoiceScope("dev"), nil)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	// A restart on the same database (the data directory could be new:
	// the keys are given as files) finds the ledger and the task.
	cfg := postgresConfig(t, dsn, t.TempDir())
	replicaOf(t, &cfg, dir)
	ts2 := startPostgres(t, cfg)
	if a := do(t, "GET", ts2.url+"/v1/tasks/"+opened.TaskID, ts2.token, nil); a.status != http.StatusOK {
		t.Fatalf("the task after a restart: %d %s", a.status, a.body)
	}
	if _, _, err := appendEvent(context.Background(), http.DefaultClient, ts2, api.Event{Type: "import.test", TaskID: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := ts2.stop(); err != nil {
		t.Fatal(err)
	}
	rep := verifyPostgres(t, dsn)
	if rep.Uncovered != 0 {
		t.Errorf("after shutdown %d events are not under a checkpoint", rep.Uncovered)
	}
}

// TestPostgresReplicaWithOtherKeysRefused: a second server on the same
// database with keys of its own must not start.
func TestPostgresReplicaWithOtherKeysRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	startPostgres(t, postgresConfig(t, dsn, dir))

	// Its own checkpoint key.
	_, err := server.New(context.Background(), postgresConfig(t, dsn, t.TempDir()), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("a replica with its own checkpoint key: %v", err)
	}
	// The right checkpoint key, its own token key.
	cfg := postgresConfig(t, dsn, t.TempDir())
	cfg.Ledger.KeyFile = filepath.Join(dir, ledger.KeyFile)
	_, err = server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "credential signing key") {
		t.Errorf("a replica with its own credential key: %v", err)
	}
}

// replicaOf makes cfg a replica of the server whose data directory is
// first: the same checkpoint and credential keys, and the same dev issuer
// of agent and user tokens.
// startReplicas starts two servers on the PostgreSQL database dsn, the
// second a replica of the first; edit, when not nil, adjusts the
// configuration of both.
func startReplicas(t *testing.T, dsn string, edit func(*config.Config)) (a, b *testServer) {
	t.Helper()
	dir := t.TempDir()
	cfgA, cfgB := postgresConfig(t, dsn, dir), postgresConfig(t, dsn, t.TempDir())
	if edit != nil {
		edit(&cfgA)
		edit(&cfgB)
	}
	a = startPostgres(t, cfgA)
	replicaOf(t, &cfgB, dir)
	return a, startPostgres(t, cfgB)
}

func replicaOf(t testing.TB, cfg *config.Config, first string) {
	t.Helper()
	cfg.Ledger.KeyFile = filepath.Join(first, ledger.KeyFile)
	cfg.Credentials.KeyFile = filepath.Join(first, "credential.key")
	src, dst := filepath.Join(first, "dev"), filepath.Join(cfg.DataDir, "dev")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDPoPReplayAcrossReplicas: two replicas behind one public URL share
// the record of accepted DPoP proofs, so a proof one accepted is refused
// when replayed to the other.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	const public = "https://writ.example.test"
	a, b := startReplicas(t, dsn, func(c *config.Config) { c.Credentials.PublicURL = public })

	key, tok := dpopTaskToken(t, a, public)
	in := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/17"}

	proof := key.Proof(t, "POST", public+"/v1/authorize", tok.AccessToken)
	if ans := authorize(t, a, "DPoP "+tok.AccessToken, proof, in); ans.status != http.StatusOK {
		t.Fatalf("first use on replica A: %d %s", ans.status, ans.body)
	}
	wantError(t, authorize(t, b, "DPoP "+tok.AccessToken, proof, in), http.StatusUnauthorized, "invalid_dpop_proof")
	// A fresh proof is accepted by either.
	if ans := authorize(t, b, "DPoP "+tok.AccessToken, key.Proof(t, "POST", public+"/v1/authorize", tok.AccessToken), in); ans.status != http.StatusOK {
		t.Fatalf("a fresh proof on replica B: %d %s", ans.status, ans.body)
	}
}

// TestDecideTaskAcrossReplicas: a task opened on one replica can be decided
// on another at once: the deciding replica catches up before it looks the
// task up.
func TestDecideTaskAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := startReplicas(t, dsn, func(c *config.Config) { c.Environment = "prod" })

	alice := devTokenFor(t, a, "alice", identity.RoleRequester)
	bob := devTokenFor(t, a, "bob", identity.RoleApprover)
	for i := range 20 {
		opened := openTask(t, a, alice, agentA, invoiceScope("prod"), nil)
		if opened.State != api.StatePendingApproval {
			t.Fatalf("task %d is %s, want pending_approval", i, opened.State)
		}
		ans := do(t, "POST", b.url+"/v1/tasks/"+opened.TaskID+"/approvals", bob, mustJSON(t, api.Decide{Decision: "approve"}))
		if ans.status != http.StatusOK {
			t.Fatalf("deciding task %d on the other replica: %d %s", i, ans.status, ans.body)
		}
	}
}

// TestStepUpAcrossReplicas: replicas share the signing key and so the key
// of args_mac: a step-up asked on one replica and approved on another is
// recognised by either, passes once between them, and does not cover the
// same tool and arguments on another resource.
func TestStepUpAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := startReplicas(t, dsn, nil)

	alice := devTokenFor(t, a, "alice", identity.RoleRequester)
	bob := devTokenFor(t, b, "bob", identity.RoleApprover)
	opened := openTask(t, a, alice, agentA, invoiceScope("dev"), nil)
	bearer := "Bearer " + tokenOf(t, exchange(t, a, exchangeForm(svid(t, a, agentA), opened.TaskID), "")).AccessToken
	step := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q2/9", Arguments: json.RawMessage(`{"id": 9}`)}
	need := decodeAs[api.Authorized](t, authorize(t, a, bearer, "", step))
	if !need.ApprovalRequired || need.ApprovalID == "" {
		t.Fatalf("step-up on A: %+v", need)
	}
	if d := do(t, "POST", b.url+"/v1/approvals/"+need.ApprovalID, bob, mustJSON(t, api.Decide{Decision: "approve"})); d.status != http.StatusOK {
		t.Fatalf("approving on B: %d %s", d.status, d.body)
	}
	payroll := step
	payroll.Resource = "erp://payroll/executive-salaries"
	if other := decodeAs[api.Authorized](t, authorize(t, b, bearer, "", payroll)); other.Allow || other.ApprovalID == need.ApprovalID {
		t.Fatalf("payroll on B after the invoice's approval: %+v", other)
	}
	if ans := authorize(t, b, bearer, "", step); ans.status != http.StatusOK {
		t.Fatalf("the approved call on B: %d %s", ans.status, ans.body)
	}
	if again := decodeAs[api.Authorized](t, authorize(t, a, bearer, "", step)); again.Allow {
		t.Fatalf("the approved call passed again on A: %+v", again)
	}
	verifyPostgres(t, dsn)
}
