package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/datadir"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/store/postgres"
	"github.com/writhq/writ/internal/store/postgres/pgtest"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness"
	"github.com/writhq/writ/internal/witness/witnesstest"
)

// witnessedLog is a ledger key made before the server's first start, so
// that the witnesses know the log when it first submits, and the witnesses.
type witnessedLog struct {
	origin, vkey, keyFile string
	witnesses             []*witnesstest.Witness
}

func newWitnessedLog(t testing.TB, n int) *witnessedLog {
	t.Helper()
	witnesstest.Require(t)
	wl := &witnessedLog{origin: "writ.test/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	skey, vkey, err := note.GenerateKey(rand.Reader, wl.origin)
	if err != nil {
		t.Fatal(err)
	}
	wl.vkey, wl.keyFile = vkey, filepath.Join(t.TempDir(), "ledger.key")
	if err := os.WriteFile(wl.keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wl.witnesses = append(wl.witnesses, witnesstest.Start(t, fmt.Sprintf("w%d.witness.test", i+1), wl.origin, vkey))
	}
	return wl
}

// configure points cfg at the log's key and its witnesses.
func (wl *witnessedLog) configure(cfg *config.Config) {
	cfg.Ledger.Origin, cfg.Ledger.KeyFile = wl.origin, wl.keyFile
	cfg.Ledger.WitnessInterval = 100 * time.Millisecond
	cfg.Ledger.Witnesses = nil
	for _, w := range wl.witnesses {
		cfg.Ledger.Witnesses = append(cfg.Ledger.Witnesses, config.WitnessConfig{URL: w.URL, Key: w.Key})
	}
}

// serveWitnessed serves a dev server, in environment env, whose
// checkpoints two witnesses of a new witnessed log cosign.
func serveWitnessed(t *testing.T, env string) (*witnessedLog, *testServer) {
	t.Helper()
	wl := newWitnessedLog(t, 2)
	cfg := servertest.Dev(t.TempDir(), env)
	wl.configure(&cfg)
	return wl, serve(t, cfg)
}

func (wl *witnessedLog) keys(t *testing.T) []*witness.Key {
	var out []*witness.Key
	for _, w := range wl.witnesses {
		k, err := witness.ParseKey(w.Key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// policy is a standard client's witness policy requiring all the log's
// witnesses.
func (wl *witnessedLog) policy(t *testing.T) fwitness.Group {
	var b strings.Builder
	var names []string
	for i, w := range wl.witnesses {
		fmt.Fprintf(&b, "witness w%d %s %s\n", i, w.Key, w.URL)
		names = append(names, fmt.Sprintf("w%d", i))
	}
	fmt.Fprintf(&b, "group g all %s\nquorum g\n", strings.Join(names, " "))
	p, err := fwitness.ParsePolicy([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// served fetches /ledger/checkpoint and checks it as a standard client
// with the witness policy would: the log's signature, then the policy.
func (wl *witnessedLog) served(ts *testServer, token string) (uint64, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/ledger/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("GET /ledger/checkpoint: %d %s", resp.StatusCode, b.Bytes())
	}
	lv, err := note.NewVerifier(wl.vkey)
	if err != nil {
		return 0, nil, err
	}
	cp, _, _, err := flog.ParseCheckpoint(b.Bytes(), wl.origin, lv)
	if err != nil {
		return 0, nil, fmt.Errorf("the served checkpoint does not verify: %v", err)
	}
	return cp.Size, b.Bytes(), nil
}

// tokens mints dev tokens for the people of the task tests.
func tokens(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	for name, role := range map[string]identity.Role{"alice": identity.RoleRequester, "auditor": identity.RoleAuditor, "admin": identity.RoleAdmin} {
		s, err := identity.DevToken(dir, name, []identity.Role{role}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[name] = s
	}
	return out
}

// TestWitnessedCheckpoint: with two real witnesses and quorum 2, the
// server's checkpoints get cosigned once it is quiet, and what it serves
// at /ledger/checkpoint, in traces and in evidence bundles carries both
// cosignatures, which a standard client's witness policy accepts.
func TestWitnessedCheckpoint(t *testing.T) {
	wl, ts := serveWitnessed(t, "prod")
	tok := tokens(t, ts.dir)
	taskID := openKB(t, ts, tok["alice"], "prod").TaskID

	// Quiet now: the latest checkpoint gets cosigned by both.
	var tr api.Trace
	var served []byte
	testkit.Eventually(t, 20*time.Second, func() error {
		tr = decodeAs[api.Trace](t, do(t, "GET", ts.url+"/v1/tasks/"+taskID+"/trace", tok["auditor"], nil))
		size, b, err := wl.served(ts, tok["auditor"])
		if err != nil {
			return err
		}
		if size != tr.CheckpointSize || tr.Witnessed == nil || tr.Witnessed.CheckpointSize != size {
			return fmt.Errorf("served witnessed size %d, latest %d, trace witnessed %+v", size, tr.CheckpointSize, tr.Witnessed)
		}
		served = b
		return nil
	})
	if !wl.policy(t).Satisfied(served) {
		t.Fatalf("the served checkpoint does not satisfy the witness policy:\n%s", served)
	}
	if tw := tr.Witnessed; len(tw.Cosignatures) != 2 || tw.Quorum != 2 || tw.Events != len(tr.Events) || tw.Checkpoint != string(served) {
		t.Errorf("trace's witnessed checkpoint: %+v", tw)
	}
	for _, c := range tr.Witnessed.Cosignatures {
		if time.Since(c.Time) > time.Hour || c.Time.After(time.Now().Add(time.Minute)) {
			t.Errorf("cosignature time %v", c.Time)
		}
	}
	// The readiness report knows what the quorum cosigned.
	readiness := decodeAs[evidence.ComplianceReport](t, do(t, "GET", ts.url+"/v1/reports/compliance?framework=nist-csf", tok["auditor"], nil))
	if w := readiness.Ledger.Witnesses; w == nil || w.Quorum != 2 || w.WitnessedSize < tr.CheckpointSize || len(w.Refusing) != 0 {
		t.Errorf("the readiness report's witnesses: %+v", readiness.Ledger.Witnesses)
	}
	var ready map[string]any
	if err := json.Unmarshal(do(t, "GET", ts.url+"/readyz", "", nil).body, &ready); err != nil {
		t.Fatal(err)
	}
	if ready["witnessed_size"] != float64(tr.CheckpointSize) || ready["witness_refusals"] != nil {
		t.Errorf("/readyz: %v", ready)
	}

	// The bundle carries the cosigned checkpoint, in each proof too, and
	// verifies with the witnesses required; a witness it was not cosigned
	// by fails it.
	a := do(t, "GET", ts.url+"/v1/tasks/"+taskID+"/evidence", tok["auditor"], nil)
	if a.status != http.StatusOK {
		t.Fatalf("evidence: %d %s", a.status, a.body)
	}
	keys := wl.keys(t)
	rep, err := evidence.Verify(bytes.NewReader(a.body), int64(len(a.body)), evidence.VerifyOptions{Key: wl.vkey, Witnesses: keys})
	if err != nil || !rep.OK() || len(rep.Cosignatures) != 2 || rep.WitnessQuorum != 2 {
		t.Fatalf("bundle with witnesses required: %+v %v", rep, err)
	}
	other := newWitnessedLog(t, 1)
	rep, err = evidence.Verify(bytes.NewReader(a.body), int64(len(a.body)), evidence.VerifyOptions{Witnesses: append(keys[:1:1], other.keys(t)...)})
	if err != nil || rep.OK() || rep.Verified != 0 || !slices.ContainsFunc(rep.Failures, func(f evidence.Failure) bool { return f.Check == "witness" }) {
		t.Fatalf("bundle against a witness that did not cosign it: %+v %v", rep, err)
	}
	rep, err = evidence.Verify(bytes.NewReader(a.body), int64(len(a.body)), evidence.VerifyOptions{Witnesses: append(keys[:1:1], other.keys(t)...), Quorum: 1})
	if err != nil || !rep.OK() {
		t.Fatalf("bundle against one of two witnesses, quorum 1: %+v %v", rep, err)
	}
}

// latestSize reads the size of the latest checkpoint in the data directory
// of a running server.
func latestSize(t *testing.T, dir string) uint64 {
	t.Helper()
	d, err := datadir.Open(context.Background(), dir, datadir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cp, err := d.Store.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// blackHole accepts connections on addr and never answers, as a witness
// that hangs would.
func blackHole(t *testing.T, addr string) func() {
	t.Helper()
	var ln net.Listener
	testkit.Eventually(t, 10*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestWitnessDownUnderLoad: under load, one witness stops and then hangs
// (its address accepts connections and never answers). No request fails,
// and requests complete while the loop's submission to the hung witness
// is still on its way: nothing on the request path waits for a witness.
// Once the witness is back, cosigning by both resumes.
func TestWitnessDownUnderLoad(t *testing.T) {
	wl, ts := serveWitnessed(t, "dev")
	ts.token = devToken(t, ts.dir, identity.RoleAdmin, identity.RoleAuditor)
	loop := ts.srv.WitnessLoop()
	hung := wl.witnesses[1]

	var failed, whileHung atomic.Int64
	var errs sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := &http.Client{Timeout: time.Minute}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := appendEvent(context.Background(), c, ts, api.Event{Type: "import.load", Data: json.RawMessage(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))})
				if err != nil {
					failed.Add(1)
					errs.Store(err.Error(), true)
					continue
				}
				if slices.Contains(loop.InFlight(), hung.Key) {
					whileHung.Add(1)
				}
			}
		}()
	}
	// Cosigned under load first.
	testkit.Eventually(t, 20*time.Second, func() error {
		_, _, err := wl.served(ts, ts.token)
		return err
	})
	hung.Stop()
	closeHole := blackHole(t, strings.TrimSuffix(strings.TrimPrefix(hung.URL, "http://"), "/"))
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := whileHung.Load(); n < 50 {
			return fmt.Errorf("%d requests completed while a submission to the hung witness was in flight", n)
		}
		return nil
	})
	closeHole()
	hung.Restart()
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		var msgs []string
		errs.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
		t.Fatalf("%d requests failed: %v", n, msgs)
	}
	// Quiet again, with the witness back: both cosign the latest.
	testkit.Eventually(t, 60*time.Second, func() error {
		size, _, err := wl.served(ts, ts.token)
		if err != nil {
			return err
		}
		if got := hung.Size(wl.origin); got != size {
			return fmt.Errorf("the restarted witness is at %d, the served checkpoint at %d", got, size)
		}
		if latest := latestSize(t, ts.dir); latest != size {
			return fmt.Errorf("served witnessed size %d, latest checkpoint %d", size, latest)
		}
		return nil
	})
	t.Logf("%d appends completed while the submission to the hung witness was in flight", whileHung.Load())
}

// TestWitnessPostgresReplicas: two replicas on one PostgreSQL database,
// two witnesses. One replica at a time runs the loop; both serve the same
// cosigned checkpoint. When the one running it stops, the other takes over.
func TestWitnessPostgresReplicas(t *testing.T) {
	t.Run("stopped", func(t *testing.T) { witnessHandover(t, false) })
	t.Run("lock lost", func(t *testing.T) { witnessHandover(t, true) })
}

// witnessHandover runs two replicas' witness loops on the schema of dsn
// and hands the loop over: the running replica stops, or its session
// holding the replicas' witness lock ends (lost). Either way exactly one
// loop runs afterwards, and the witnesses keep cosigning.
func witnessHandover(t *testing.T, lost bool) {
	dsn := pgtest.DSN(t)
	wl := newWitnessedLog(t, 2)
	dirA := t.TempDir()
	cfgA := postgresConfig(t, dsn, dirA)
	wl.configure(&cfgA)
	a := startPostgres(t, cfgA)
	cfgB := postgresConfig(t, dsn, t.TempDir())
	replicaOf(t, &cfgB, dirA)
	wl.configure(&cfgB)
	b := startPostgres(t, cfgB)

	appendMany(t, a, "a", 20)
	appendMany(t, b, "b", 20)
	var note []byte
	testkit.Eventually(t, 30*time.Second, func() error {
		sa, na, err := wl.served(a, a.token)
		if err != nil {
			return err
		}
		sb, nb, err := wl.served(b, b.token)
		if err != nil {
			return err
		}
		if !bytes.Equal(na, nb) || sa != sb || sa < 40 {
			return fmt.Errorf("replica A serves size %d, B %d", sa, sb)
		}
		note = na
		return nil
	})
	if !wl.policy(t).Satisfied(note) {
		t.Fatalf("the served checkpoint does not satisfy the policy:\n%s", note)
	}
	la, lb := a.srv.WitnessLoop(), b.srv.WitnessLoop()
	if la.Active() == lb.Active() {
		t.Fatalf("loop active on A: %v, on B: %v; want exactly one", la.Active(), lb.Active())
	}
	running, other := a, b
	if lb.Active() {
		running, other = b, a
	}
	if !lost {
		if err := running.stop(); err != nil {
			t.Fatal(err)
		}
	} else {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		key := st.LockKey(witness.LockName)
		st.Close()
		old := pgtest.TerminateLockHolder(t, dsn, key)
		// The loop that lost its lock stops; one of the two takes the
		// lock again, in a session of its own.
		testkit.Eventually(t, 30*time.Second, func() error {
			pid, held := pgtest.LockHolder(t, dsn, key)
			if !held || pid == old {
				return fmt.Errorf("the witness lock is held by %d (%v), was %d", pid, held, old)
			}
			if la.Active() == lb.Active() {
				return fmt.Errorf("loop active on A: %v, on B: %v; want exactly one", la.Active(), lb.Active())
			}
			return nil
		})
		if lb.Active() {
			other = b
		} else {
			other = a
		}
	}
	appendMany(t, other, "c", 10)
	testkit.Eventually(t, 30*time.Second, func() error {
		if !other.srv.WitnessLoop().Active() {
			return fmt.Errorf("the remaining replica does not run the loop")
		}
		if lost && la.Active() == lb.Active() {
			return fmt.Errorf("loop active on A: %v, on B: %v; want exactly one", la.Active(), lb.Active())
		}
		size, _, err := wl.served(other, other.token)
		if err != nil {
			return err
		}
		if w := wl.witnesses[0].Size(wl.origin); w != size || size < 50 {
			return fmt.Errorf("served %d, witness at %d", size, w)
		}
		return nil
	})
}
