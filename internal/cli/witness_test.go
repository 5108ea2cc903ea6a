package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server/servertest"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness"
	"github.com/writhq/writ/internal/witness/witnesstest"
)

// witnessedSetup is a ledger key made before the first start and two real
// witnesses that know the log.
type witnessedSetup struct {
	origin, vkey, keyFile string
	w                     []*witnesstest.Witness
	base                  string
}

func newWitnessedSetup(t *testing.T) *witnessedSetup {
	witnesstest.Require(t)
	s := &witnessedSetup{origin: "writ.test/cli-witness", base: t.TempDir()}
	skey, vkey, err := note.GenerateKey(rand.Reader, s.origin)
	if err != nil {
		t.Fatal(err)
	}
	s.vkey, s.keyFile = vkey, filepath.Join(s.base, "ledger.key")
	if err := os.WriteFile(s.keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.w = []*witnesstest.Witness{
		witnesstest.Start(t, "w1.witness.test", s.origin, vkey),
		witnesstest.Start(t, "w2.witness.test", s.origin, vkey),
	}
	return s
}

// config writes the configuration of a server on the data directory dir
// and returns its path.
func (s *witnessedSetup) config(t *testing.T, dir string) string {
	t.Helper()
	y := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\ndev: true\nledger:\n  origin: %s\n  key_file: %s\n  witness_interval: 100ms\n  witnesses:\n",
		dir, s.origin, s.keyFile)
	for _, w := range s.w {
		y += fmt.Sprintf("    - url: %s\n      key: %s\n", w.URL, w.Key)
	}
	path := filepath.Join(s.base, filepath.Base(dir)+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// get fetches a path of the server as tok's holder.
func get(url, tok string) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// witnessed is run's condition: the server serves its latest checkpoint
// as witnessed.
func witnessed(t *testing.T) func(url, tok, dir string) error {
	return func(url, tok, dir string) error {
		status, b, err := get(url+"/ledger/checkpoint", tok)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%d %s", status, b)
		}
		if size, latest := strings.SplitN(string(b), "\n", 3)[1], latestCheckpoint(t, dir); size != fmt.Sprint(latest) {
			return fmt.Errorf("witnessed size %s, latest %d", size, latest)
		}
		return nil
	}
}

// refused is run's condition: /readyz shows n refusals, all recorded.
func refused(n int) func(url, tok, dir string) error {
	return func(url, tok, dir string) error {
		_, b, err := get(url+"/readyz", "")
		if err != nil {
			return err
		}
		var ready struct {
			Refusals []struct {
				Index *uint64 `json:"index"`
			} `json:"witness_refusals"`
		}
		if err := json.Unmarshal(b, &ready); err != nil {
			return err
		}
		if len(ready.Refusals) != n {
			return fmt.Errorf("/readyz: %s", b)
		}
		for _, r := range ready.Refusals {
			if r.Index == nil {
				return fmt.Errorf("a refusal not recorded yet: %s", b)
			}
		}
		return nil
	}
}

// run starts a server on the configuration, appends n events, waits until
// cond holds and stops it.
func (s *witnessedSetup) run(t *testing.T, cfgPath string, n int, cond func(url, tok, dir string) error) {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, cfg)
	tok, err := identity.DevToken(cfg.DataDir, "admin", []identity.Role{identity.RoleAdmin, identity.RoleAuditor}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf(`{"type":"import.test","data":{"run":%q,"n":%d}}`, filepath.Base(cfg.DataDir), i)
		if status, _ := postJSON(t, srv.URL+"/v1/ledger/events", tok, json.RawMessage(body)); status != http.StatusCreated {
			t.Fatalf("append: %d", status)
		}
	}
	testkit.Eventually(t, 30*time.Second, func() error { return cond(srv.URL, tok, cfg.DataDir) })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
}

func latestCheckpoint(t *testing.T, dir string) uint64 {
	t.Helper()
	d := openDir(t, dir)
	defer d.Close()
	cp, err := d.Store.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// refusals returns the witness.refused events of a data directory.
func refusals(t *testing.T, dir string) []witness.RefusalEvent {
	t.Helper()
	var out []witness.RefusalEvent
	scanDir(t, dir, func(e ledger.Entry) error {
		if e.Event.Type != ledger.TypeWitnessRefused {
			return nil
		}
		var r witness.RefusalEvent
		if err := json.Unmarshal(e.Event.Data, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out
}

// backupDir copies a stopped server's data directory, as a backup would.
func backupDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWitnessRollbackAndFork: an honest ledger verifies against its two
// witnesses; the same data directory restored from an earlier copy (a
// rollback), and restored and then appended to past what the witnesses
// cosigned (a fork), both fail 'writ ledger verify', naming each witness
// and both sizes, and a server started on either gets refused by both
// witnesses and records the refusals.
func TestWitnessRollbackAndFork(t *testing.T) {
	s := newWitnessedSetup(t)
	honest := filepath.Join(s.base, "honest")
	honestCfg := s.config(t, honest)
	s.run(t, honestCfg, 10, witnessed(t))
	early := filepath.Join(s.base, "early")
	backupDir(t, honest, early)
	s.run(t, honestCfg, 20, witnessed(t))
	cosigned := latestCheckpoint(t, honest)
	for _, w := range s.w {
		if got := w.Size(s.origin); got != cosigned {
			t.Fatalf("witness %s at %d, the honest ledger's latest checkpoint %d", w.Name, got, cosigned)
		}
	}

	out, errOut, code := runWritIn(t, "", "ledger", "verify", "--config", honestCfg)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("ok   witnessed    the latest checkpoint (size %d) is cosigned by 2 of 2 witnesses", cosigned)) ||
		!strings.Contains(out, fmt.Sprintf("w1.witness.test: had cosigned %d entries", cosigned)) {
		t.Fatalf("verify of the honest ledger: %d\n%s%s", code, out, errOut)
	}
	// The same with the witnesses named by flags, and offline.
	args := []string{"ledger", "verify", "--data-dir", honest}
	for _, w := range s.w {
		args = append(args, "--witness", w.Key, "--witness-url", w.URL)
	}
	if out, errOut, code := runWritIn(t, "", append(args, "--quorum", "2")...); code != 0 || !strings.Contains(out, "w2.witness.test: had cosigned") {
		t.Fatalf("verify with --witness flags: %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runWritIn(t, "", "ledger", "verify", "--data-dir", honest, "--witness", s.w[0].Key); code != 0 || !strings.Contains(out, "was not asked") {
		t.Fatalf("verify offline: %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runWritIn(t, "", "ledger", "status", "--config", honestCfg)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("witnessed     the checkpoint of size %d, cosigned by 2 (quorum 2)", cosigned)) ||
		!strings.Contains(out, "w1.witness.test at ") || !strings.Contains(out, "w2.witness.test") {
		t.Fatalf("ledger status: %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name   string
		extra  int // events appended around writ after the restore
		reason string
	}{
		{"rollback", 0, witness.ReasonRollback},
		{"fork", 100, witness.ReasonFork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(s.base, tc.name)
			backupDir(t, early, dir)
			cfg := s.config(t, dir)
			if tc.extra > 0 {
				events := strings.Repeat(`{"type":"import.other","data":{"n":1}}`+"\n", tc.extra)
				if out, errOut, code := runWritIn(t, events, "ledger", "append", "--config", cfg); code != 0 {
					t.Fatalf("append: %d %s%s", code, out, errOut)
				}
			}
			size := latestCheckpoint(t, dir)
			out, errOut, code := runWritIn(t, "", "ledger", "verify", "--config", cfg, "-o", "json")
			var rep struct {
				OK        bool        `json:"ok"`
				Witnesses witnessJSON `json:"witnesses"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("verify -o json: %v\n%s%s", err, out, errOut)
			}
			if code == 0 || rep.OK || len(rep.Witnesses.Probes) != 2 {
				t.Fatalf("verify of the %s ledger: %d\n%s%s", tc.name, code, out, errOut)
			}
			for _, p := range rep.Witnesses.Probes {
				if p.Refusal != tc.reason || p.WitnessSize != cosigned {
					t.Errorf("probe of %s: %+v, want %s against %d", p.Witness, p, tc.reason, cosigned)
				}
			}
			out, _, _ = runWritIn(t, "", "ledger", "verify", "--config", cfg)
			for _, w := range s.w {
				want := fmt.Sprintf("witness %s: %s: ", w.Name, tc.name)
				if !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprint(cosigned)) || !strings.Contains(out, fmt.Sprint(size)) {
					t.Errorf("verify output does not name %q with sizes %d and %d:\n%s", want, cosigned, size, out)
				}
			}
			// A server on it: both witnesses refuse, and it records that.
			s.run(t, cfg, 1, refused(2))
			got := refusals(t, dir)
			if len(got) != 2 {
				t.Fatalf("%d witness.refused events, want 2: %+v", len(got), got)
			}
			for _, r := range got {
				if r.Reason != tc.reason || r.WitnessSize == nil || *r.WitnessSize != cosigned {
					t.Errorf("refusal %+v", r)
				}
			}
			out, _, code = runWritIn(t, "", "ledger", "status", "--config", cfg)
			if code != 0 || strings.Count(out, "REFUSED ("+tc.reason+")") != 2 {
				t.Errorf("ledger status after the refusals:\n%s", out)
			}
			for _, w := range s.w {
				if got := w.Size(s.origin); got != cosigned {
					t.Errorf("witness %s moved to %d", w.Name, got)
				}
			}
		})
	}
	if out, errOut, code := runWritIn(t, "", "ledger", "verify", "--config", honestCfg); code != 0 {
		t.Fatalf("the honest ledger after it all: %d\n%s%s", code, out, errOut)
	}
}

// TestVerifyBundleWitnesses: a bundle exported from a witnessed server
// carries the cosigned checkpoint; 'writ verify --witness' requires the
// cosignatures, and fails the bundle for a witness that did not cosign it.
func TestVerifyBundleWitnesses(t *testing.T) {
	s := newWitnessedSetup(t)
	dir := filepath.Join(s.base, "bundle")
	cfgPath := s.config(t, dir)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Environment = "prod"
	srv := servertest.Start(t, cfg)
	alice, err := identity.DevToken(dir, "alice", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"agent":"spiffe://example.org/agent/summarizer","intent":"Search the knowledge base","ttl":"15m",
		"scope":{"tools":["kb.search"],"resources":["kb://public/*"],"operations":["read"],"data_class":"internal","environments":["prod"]}}`
	status, answer := postJSON(t, srv.URL+"/v1/tasks", alice, json.RawMessage(body))
	var opened struct {
		TaskID string `json:"task_id"`
	}
	json.Unmarshal(answer, &opened)
	if status != http.StatusCreated || opened.TaskID == "" {
		t.Fatalf("open: %d", status)
	}
	auditor, err := identity.DevToken(dir, "audrey", []identity.Role{identity.RoleAuditor}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() error { return witnessed(t)(srv.URL, auditor, dir) })
	status, zip, err := get(srv.URL+"/v1/tasks/"+opened.TaskID+"/evidence", alice)
	if err != nil || status != http.StatusOK {
		t.Fatalf("evidence: %d %v", status, err)
	}
	bundle := filepath.Join(s.base, "bundle.zip")
	os.WriteFile(bundle, zip, 0o600)

	out, errOut, code := runWritIn(t, "", "verify", bundle, "--key", s.vkey, "--witness", s.w[0].Key, "--witness", s.w[1].Key)
	if code != 0 || !strings.Contains(out, "ok   witnessed    the checkpoint is cosigned by 2 witnesses (quorum 2): w1.witness.test at ") {
		t.Fatalf("verify --witness: %d\n%s%s", code, out, errOut)
	}
	if out, _, code := runWritIn(t, "", "verify", bundle); code != 0 || !strings.Contains(out, "carries 2 signature line(s) besides the log's") {
		t.Errorf("verify without witnesses: %d\n%s", code, out)
	}
	other := witnesstest.Start(t, "w3.witness.test", s.origin, s.vkey)
	out, _, code = runWritIn(t, "", "verify", bundle, "--witness", s.w[0].Key, "--witness", other.Key)
	if code == 0 || !strings.Contains(out, "FAIL witnessed") || !strings.Contains(out, "0/") {
		t.Errorf("verify against a witness that did not cosign: %d\n%s", code, out)
	}
	if out, _, code := runWritIn(t, "", "verify", bundle, "--witness", s.w[0].Key, "--witness", other.Key, "--quorum", "1"); code != 0 {
		t.Errorf("verify with quorum 1 of those two: %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--quorum", "1"},
		{"--witness", "nonsense"},
		{"--witness", s.w[0].Key, "--quorum", "2"},
	} {
		if _, errOut, code := runWritIn(t, "", append([]string{"verify", bundle}, args...)...); code != 2 || !strings.Contains(errOut, "writ: hint:") {
			t.Errorf("verify %v: exit %d, %s; want a usage error", args, code, errOut)
		}
	}
}
