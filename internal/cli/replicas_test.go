package cli

// These tests run three `writ server` processes on one PostgreSQL database,
// load them with the bench tool round-robin, and check the result the way
// an auditor would: `writ ledger verify`, and the Tessera tlog-tiles client
// against each replica. They need WRIT_TEST_POSTGRES_DSN.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/client"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/testkit"
)

// replica is one `writ server` process.
type replica struct {
	url, dir string
	cmd      *exec.Cmd
	done     chan error
	logs     *bytes.Buffer
}

// cluster is several replicas on one database. The first replica's data
// directory creates the keys; the others get them as key files, and a copy
// of its dev issuer so the same dev identities work everywhere.
type cluster struct {
	t        *testing.T
	dsn      string
	first    string // the first replica's data dir
	replicas []*replica
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs server processes; skipped with -short")
	}
	c := &cluster{t: t, dsn: pgtest.DSN(t)}
	for i := range n {
		c.replicas = append(c.replicas, c.start(i, nil))
	}
	return c
}

// start starts replica i (a new one, or again after a kill, on its data
// directory) and waits until it is ready.
func (c *cluster) start(i int, env []string) *replica {
	c.t.Helper()
	r, err := c.launch(i, "", env)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// launch is start without failing the test, for use from any goroutine;
// port, when set, is the port to listen on.
func (c *cluster) launch(i int, port string, env []string) (*replica, error) {
	t := c.t
	r := &replica{logs: &bytes.Buffer{}}
	restart := i < len(c.replicas)
	if restart {
		r.dir = c.replicas[i].dir
	} else {
		r.dir = filepath.Join(t.TempDir(), fmt.Sprintf("replica-%d", i))
	}
	if c.first == "" {
		c.first = r.dir
	} else if r.dir != c.first {
		if !restart {
			if err := copyDir(filepath.Join(c.first, "dev"), filepath.Join(r.dir, "dev")); err != nil {
				return nil, err
			}
		}
		env = append(env, "WRIT_LEDGER_KEY_FILE="+filepath.Join(c.first, ledger.KeyFile),
			"WRIT_CREDENTIALS_KEY_FILE="+filepath.Join(c.first, "credential.key"))
	}
	// A new replica picks its own port and reports it in its first log
	// line; a restarted one must come back on the port the load is using.
	if port == "" {
		port = "0"
	} else {
		r.url = "http://127.0.0.1:" + port
	}
	r.cmd = exec.Command("writ", "server", "--dev", "--store", "postgres", "--log-level", "info")
	r.cmd.Env = append(os.Environ(), "WRIT_DSN="+c.dsn, "WRIT_DATA_DIR="+r.dir, "WRIT_LISTEN=127.0.0.1:"+port, "WRIT_CONFIG=")
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stderr = &lockedWriter{w: r.logs}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	r.done = make(chan error, 1)
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.stop(t)
		if l := r.logs.String(); strings.Contains(l, "DATA RACE") || strings.Contains(l, "panic:") {
			t.Errorf("replica %d:\n%s", i, l)
		}
	})
	if err := waitReady(r); err != nil {
		return nil, fmt.Errorf("replica %d: %v\n%s", i, err, r.logs)
	}
	return r, nil
}

// stop interrupts the replica (a graceful shutdown) and waits for it.
func (r *replica) stop(t *testing.T) {
	if r.cmd.ProcessState != nil {
		return
	}
	if !testkit.Interrupt(r.cmd.Process, r.done, 60*time.Second) {
		t.Errorf("replica %s did not stop within 60s", r.url)
	}
}

// kill ends the replica with SIGKILL: no shutdown, no final checkpoint.
func (r *replica) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// listenURL is the URL in a replica's "writ server listening" log line, or
// "" before that line is written.
func (r *replica) listenURL() string {
	w := r.cmd.Stderr.(*lockedWriter)
	w.mu.Lock()
	logs := w.w.String()
	w.mu.Unlock()
	for line := range strings.Lines(logs) {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "writ server listening" {
			return rec.URL
		}
	}
	return ""
}

func waitReady(r *replica) error {
	c := &http.Client{Timeout: time.Second}
	var exited error
	err := testkit.Poll(60*time.Second, func() error {
		select {
		case err := <-r.done:
			exited = fmt.Errorf("exited: %v", err)
			return nil
		default:
		}
		if r.url == "" {
			if r.url = r.listenURL(); r.url == "" {
				return errors.New("no listening address logged yet")
			}
		}
		return testkit.Ready(c, r.url+"/readyz")
	})
	if err != nil {
		return fmt.Errorf("%s not ready after 60s: %v", r.url, err)
	}
	return exited
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) urls() []string {
	var out []string
	for _, r := range c.replicas {
		out = append(out, r.url)
	}
	return out
}

// load runs the bench tool against every replica round-robin, returning its
// report and the action IDs of every allowed call. during, when set, runs
// once the load is going.
func (c *cluster) load(d time.Duration, during func()) (benchReport, map[string]bool) {
	t := c.t
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	var errs strings.Builder
	urls := c.urls()
	b := &bench{io: IO{Stdout: &strings.Builder{}, Stderr: &errs, Getenv: func(string) string { return "" }},
		call: api.Authorize{Tool: "bench.read", Operation: "read", Resource: "bench://items/1", DataClass: "internal"},
		deny: 10, conc: 24, dur: d, also: urls[1:],
		onAllow: func(id string) {
			mu.Lock()
			defer mu.Unlock()
			if acked[id] {
				t.Errorf("action %s allowed twice", id)
			}
			acked[id] = true
		}}
	ctx := context.Background()
	end, err := b.setup(ctx, client.New(urls[0], ""), c.first)
	if err != nil {
		t.Fatalf("bench setup: %v\n%s", err, errs.String())
	}
	if during != nil {
		go func() {
			time.Sleep(d / 3)
			during()
		}()
	}
	rep := b.run(ctx)
	end()
	return rep, acked
}

// auditor returns an auditor's dev token.
func (c *cluster) auditor() string {
	tok, err := identity.DevToken(c.first, "auditor", []identity.Role{identity.RoleAuditor}, time.Hour, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// verifyCLI runs `writ ledger verify` on the database.
func (c *cluster) verifyCLI() {
	t := c.t
	t.Helper()
	out, errs, code := runWrit(t, "ledger", "verify", "--store", "postgres", "--dsn", c.dsn, "--data-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("writ ledger verify: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "OK") && !strings.Contains(out, "ok") {
		t.Logf("writ ledger verify:\n%s", out)
	}
}

// waitCovered waits until a signed checkpoint covers every event the
// store holds: replicas sign one a few milliseconds after their last
// commit.
func (c *cluster) waitCovered() {
	t := c.t
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	testkit.Eventually(t, 20*time.Second, func() error {
		var size, covered int64
		if err := conn.QueryRow(ctx, `SELECT (SELECT size FROM log_head), (SELECT COALESCE(MAX(size), 0) FROM checkpoints)`).Scan(&size, &covered); err != nil {
			t.Fatal(err)
		}
		if covered < size {
			return fmt.Errorf("the latest checkpoint covers %d of %d events", covered, size)
		}
		return nil
	})
}

// checkLog waits for a checkpoint covering the whole store, runs
// `writ ledger verify` on it, and checks with the tlog-tiles client that
// every replica serves one log holding every acknowledged action once.
func (c *cluster) checkLog(acked map[string]bool) {
	c.t.Helper()
	c.waitCovered()
	c.verifyCLI()
	tok := c.auditor()
	var views []logView
	for _, r := range c.replicas {
		views = append(views, readLog(c.t, r.url, tok))
	}
	checkOneLog(c.t, views, acked)
}

// logView is what the tlog-tiles client sees at one replica.
type logView struct {
	cp     *log.Checkpoint
	raw    []byte
	leaves [][]byte
}

// readLog fetches a replica's checkpoint and every entry it covers with the
// Tessera client, checks inclusion of a spread of entries and the root, and
// returns them.
func readLog(t *testing.T, base, token string) logView {
	t.Helper()
	ctx := context.Background()
	resp, err := doGet(base+"/ledger/key", token)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(resp))
	if err != nil {
		t.Fatalf("%s/ledger/key: %v", base, err)
	}
	root, _ := url.Parse(base + "/ledger/")
	f, err := tclient.NewHTTPFetcher(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.SetAuthorizationHeader("Bearer " + token)
	cp, raw, _, err := tclient.FetchCheckpoint(ctx, f.ReadCheckpoint, v, v.Name())
	if err != nil {
		t.Fatalf("%s: FetchCheckpoint: %v", base, err)
	}
	var leaves [][]byte
	for i := uint64(0); i*layout.EntryBundleWidth < cp.Size; i++ {
		b, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, i, cp.Size)
		if err != nil {
			t.Fatalf("%s: GetEntryBundle(%d): %v", base, i, err)
		}
		leaves = append(leaves, b.Entries...)
	}
	if uint64(len(leaves)) != cp.Size {
		t.Fatalf("%s: %d entries under a checkpoint of size %d", base, len(leaves), cp.Size)
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < cp.Size; i += max(cp.Size/50, 1) {
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatalf("%s: InclusionProof(%d): %v", base, i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaves[i]), p, cp.Hash); err != nil {
			t.Errorf("%s: entry %d is not in checkpoint %d: %v", base, i, cp.Size, err)
		}
	}
	return logView{cp: cp, raw: raw, leaves: leaves}
}

// doGet is get for a body that must come with 200 OK.
func doGet(u, token string) (string, error) {
	status, b, err := get(u, token)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s %s", u, status, http.StatusText(status), b)
	}
	return string(b), nil
}

// checkOneLog checks that the replicas serve one log: each view is a
// prefix of the longest (same entries, consistent checkpoints), no action
// is in it twice, and every acknowledged action is in it.
func checkOneLog(t *testing.T, views []logView, acked map[string]bool) {
	t.Helper()
	long := views[0]
	for _, v := range views {
		if v.cp.Size > long.cp.Size {
			long = v
		}
	}
	for i, v := range views {
		for j := range v.leaves {
			if !bytes.Equal(v.leaves[j], long.leaves[j]) {
				t.Fatalf("replica %d's entry %d differs from the longest log's: the log forked", i, j)
			}
		}
		// With its entries a prefix of the longest log's, a matching root
		// makes this checkpoint consistent with the longest one.
		if got := merkleRootOf(v.leaves); !bytes.Equal(got, v.cp.Hash) {
			t.Errorf("replica %d: root of its entries differs from its checkpoint", i)
		}
	}
	seen := map[string]uint64{}
	authorized := 0
	for i, leaf := range long.leaves {
		e, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if e.Event.Type != ledger.TypeActionAuthorized {
			continue
		}
		var d struct {
			ActionID string `json:"action_id"`
		}
		if err := json.Unmarshal(e.Event.Data, &d); err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[d.ActionID]; dup {
			t.Errorf("action %s authorized at %d and again at %d", d.ActionID, prev, i)
		}
		seen[d.ActionID] = uint64(i)
		authorized++
	}
	missing := 0
	for id := range acked {
		if _, ok := seen[id]; !ok {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged action %s is not in the log", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged actions are missing", missing, len(acked))
	}
	t.Logf("log of %d entries, %d actions authorized, %d acknowledged to the load tool", long.cp.Size, authorized, len(acked))
}

// merkleRootOf computes the RFC 6962 root of leaves independently of the
// served tiles.
func merkleRootOf(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	switch len(leaves) {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(merkleRootOf(leaves[:k]), merkleRootOf(leaves[k:]))
}

func TestReplicasShareOneLedgerUnderLoad(t *testing.T) {
	c := newCluster(t, 3)
	// Lifecycle changes, which take the replicas' lock exclusively, still
	// get their turn while the others authorize without a pause.
	lifecycle := make(chan error, 1)
	rep, acked := c.load(4*time.Second, func() {
		ctx := context.Background()
		req, err := identity.DevToken(c.first, "carol", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
		if err != nil {
			lifecycle <- err
			return
		}
		cl := client.New(c.replicas[1].url, req)
		for range 5 {
			o, err := cl.OpenTask(ctx, api.OpenTask{Agent: "spiffe://" + identity.DevTrustDomain + "/agent/y", Intent: "during load", TTL: "10m",
				Scope: api.Scope{Tools: []string{"bench.read"}, Resources: []string{"bench://items/*"}, Operations: []string{"read"},
					DataClass: "internal", Environments: []string{"*"}}})
			if err == nil {
				_, err = cl.Revoke(ctx, o.TaskID, "test")
			}
			if err != nil {
				lifecycle <- err
				return
			}
		}
		lifecycle <- nil
	})
	if err := <-lifecycle; err != nil {
		t.Errorf("opening and revoking tasks during the load: %v", err)
	}
	if rep.Allowed == 0 || len(rep.Errors) > 0 {
		t.Fatalf("load: %d allowed, errors %v", rep.Allowed, rep.Errors)
	}
	t.Logf("3 replicas: %.0f req/s, p50 %.2f ms, p99 %.2f ms", rep.PerSecond, rep.P50ms, rep.P99ms)

	// Every replica's checkpoints, signed by whichever committed, extend
	// one another.
	c.checkLog(acked)

	// A replica started on another key refuses to start.
	bad := exec.Command("writ", "server", "--dev", "--store", "postgres")
	bad.Env = append(os.Environ(), "WRIT_DSN="+c.dsn, "WRIT_DATA_DIR="+t.TempDir(), "WRIT_LISTEN=127.0.0.1:0", "WRIT_CONFIG=")
	out, err := bad.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("key")) {
		t.Errorf("a replica with its own keys: %v\n%s", err, out)
	}
}

func TestReplicasTaskLifecycleAcrossReplicas(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	r0, r1, r2 := c.replicas[0], c.replicas[1], c.replicas[2]
	now := time.Now()
	req, _ := identity.DevToken(c.first, "alice", []identity.Role{identity.RoleRequester}, time.Hour, now)
	const agent = "spiffe://" + identity.DevTrustDomain + "/agent/x"
	// Opened on one replica, exchanged on another, used on the third.
	opened, err := client.New(r0.url, req).OpenTask(ctx, api.OpenTask{Agent: agent, Intent: "replicas", TTL: "10m",
		Scope: api.Scope{Tools: []string{"bench.read"}, Resources: []string{"bench://items/*"}, Operations: []string{"read"},
			DataClass: "internal", Environments: []string{"*"}}})
	if err != nil || opened.State != api.StateActive {
		t.Fatalf("open: %+v %v", opened, err)
	}
	svid, err := identity.DevSVID(c.first, agent, []string{"writ"}, 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client.New(r1.url, "").ExchangeToken(ctx, svid, opened.TaskID)
	if err != nil {
		t.Fatalf("exchange on another replica: %v", err)
	}
	call := api.Authorize{Tool: "bench.read", Operation: "read", Resource: "bench://items/1", DataClass: "internal"}
	for _, r := range c.replicas {
		if a, err := client.New(r.url, tok.AccessToken).Authorize(ctx, call); err != nil || !a.Allow {
			t.Fatalf("authorize on %s: %+v %v", r.url, a, err)
		}
	}
	// One action's result, sent to every replica at once, is recorded once.
	a, err := client.New(r0.url, tok.AccessToken).Authorize(ctx, call)
	if err != nil || !a.Allow {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	var wg sync.WaitGroup
	results := make([]error, len(c.replicas))
	for i, r := range c.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = client.New(r.url, tok.AccessToken).RecordResult(ctx, a.ActionID, api.ActionResult{Status: "ok"})
		}()
	}
	wg.Wait()
	recorded := 0
	for _, err := range results {
		if err == nil {
			recorded++
		} else if !strings.Contains(err.Error(), "409") {
			t.Errorf("a second result: %v, want 409", err)
		}
	}
	if recorded != 1 {
		t.Errorf("the result was recorded %d times", recorded)
	}
	// Revoked on one replica: refused at once on the others, since each
	// catches up under the replicas' lock before deciding.
	if _, err := client.New(r2.url, req).Revoke(ctx, opened.TaskID, "test"); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.replicas {
		if a, err := client.New(r.url, tok.AccessToken).Authorize(ctx, call); err == nil && a.Allow {
			t.Errorf("authorize on %s after the revocation on %s was allowed", r.url, r2.url)
		}
	}
	c.verifyCLI()
}

func TestReplicaKilledMidLoad(t *testing.T) {
	c := newCluster(t, 3)
	victim := c.replicas[2]
	port := victim.url[strings.LastIndex(victim.url, ":")+1:]
	// Killed a third of the way through the load, and started again on
	// the same port while the other two are still loaded: it must catch
	// up with the log as it moves and serve again.
	restarted := make(chan error, 1)
	var again *replica
	rep, acked := c.load(6*time.Second, func() {
		victim.kill()
		time.Sleep(time.Second)
		r, err := c.launch(2, port, nil)
		again = r
		restarted <- err
	})
	if err := <-restarted; err != nil {
		t.Fatalf("restarting the killed replica under load: %v", err)
	}
	c.replicas[2] = again
	if rep.Allowed == 0 {
		t.Fatalf("load: nothing allowed; errors %v", rep.Errors)
	}
	// Calls to the killed replica fail; the others go on answering.
	for k := range rep.Errors {
		if !strings.Contains(k, "transport") {
			t.Errorf("errors other than the killed replica's connections: %v", rep.Errors)
		}
	}
	t.Logf("load with one replica killed and restarted: %d allowed, errors %v", rep.Allowed, rep.Errors)
	c.checkLog(acked)
}
