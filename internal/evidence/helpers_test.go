package evidence_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/query"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
)

// env is a real SQLite ledger with the default policy pack, its sources
// kept in a directory, and the task service over them.
type env struct {
	t     testing.TB
	dir   string
	store *sqlite.Store
	led   *ledger.Ledger
	kp    *ledger.KeyPair
	vkey  string
	pol   *policy.Policy
	src   *policy.DirStore
	svc   *task.Service
}

func newEnv(t testing.TB, environment string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	var err error
	if e.store, err = sqlite.Open(ctx, filepath.Join(e.dir, "writ.db")); err != nil {
		t.Fatal(err)
	}
	if e.kp, e.vkey, err = ledger.LoadOrCreateKey(e.dir, "writ.test/evidence"); err != nil {
		t.Fatal(err)
	}
	if e.led, err = ledger.New(ctx, ledger.Config{Store: e.store, Signer: e.kp, MaxBatch: 4096}); err != nil {
		t.Fatal(err)
	}
	if e.src, err = policy.NewDirStore(filepath.Join(e.dir, "policies")); err != nil {
		t.Fatal(err)
	}
	if e.pol, err = policy.New(ctx, policy.Config{Recorder: e.led, Sources: e.src}); err != nil {
		t.Fatal(err)
	}
	e.svc, err = task.New(ctx, task.Config{Ledger: e.led, Store: e.store, Policy: e.pol, Environment: environment,
		DB: e.store.DB(), SweepInterval: -1, Origin: e.kp.Name(), Verifier: e.kp.Verifier(), DigestKey: e.kp.DigestKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.svc.Close()
		e.pol.Close()
		e.led.Close(context.Background())
		e.store.Close()
	})
	return e
}

func (e *env) source() evidence.Source {
	return evidence.Source{Store: e.store, VerifierKey: e.vkey, Policies: e.src, Tasks: e.svc}
}

func human(id string, roles ...identity.Role) identity.Principal {
	return identity.Principal{Kind: identity.KindHuman, ID: id, Roles: roles}
}

var (
	alice = human("oidc:test#alice", identity.RoleRequester)
	bob   = human("oidc:test#bob", identity.RoleApprover)
)

const agent = "spiffe://example.org/agent/summarizer"

func scope(class string, envs ...string) api.Scope {
	return api.Scope{Tools: []string{"invoices.*", "mail.send"}, Resources: []string{"erp://invoices/2026-Q3/*"},
		Operations: []string{"read", "send"}, DataClass: class, Environments: envs}
}

// credential records a credential for an active task.
func (e *env) credential(taskID string) task.VerifiedCredential {
	e.t.Helper()
	jti := "jti-" + taskID
	exp := time.Now().Add(5 * time.Minute)
	if err := e.svc.RecordCredential(context.Background(), task.Credential{JTI: jti, TaskID: taskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", e.pol.Version()); err != nil {
		e.t.Fatalf("RecordCredential: %v", err)
	}
	return task.VerifiedCredential{JTI: jti, TaskID: taskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
}

// story runs a whole task: opened on confidential data (needs approval),
// approved, a credential issued, calls allowed with results and one
// denied, a child task delegated, then completion. It returns the task ID.
func (e *env) story(calls int) string {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "Summarize Q3 invoices", Scope: scope("confidential", "prod"), TTL: "15m"})
	if err != nil {
		e.t.Fatal(err)
	}
	if out.State != api.StatePendingApproval {
		e.t.Fatalf("task state %s, want pending approval", out.State)
	}
	if _, err := e.svc.DecideTask(ctx, bob, out.TaskID, api.Decide{Decision: "approve", Reason: "ticket 7"}); err != nil {
		e.t.Fatal(err)
	}
	cred := e.credential(out.TaskID)
	for i := range calls {
		a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read",
			Resource: "erp://invoices/2026-Q3/17", Arguments: json.RawMessage(`{"id":` + itoa(i) + `}`), DataClass: "internal"}, task.Request{Gateway: "api"})
		if err != nil || !a.Allow {
			e.t.Fatalf("authorize: %+v %v", a, err)
		}
		if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"total":3}`)}); err != nil {
			e.t.Fatal(err)
		}
	}
	if a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "payroll.read", Operation: "read", Resource: "erp://payroll/1", DataClass: "internal"}, task.Request{Gateway: "api"}); err != nil || a.Allow {
		e.t.Fatalf("out of scope: %+v %v", a, err)
	}
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		e.t.Fatal(err)
	}
	return out.TaskID
}

func itoa(i int) string { return jsonInt(i) }

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

// export writes taskID's bundle and returns its bytes.
func (e *env) export(taskID string, opts evidence.Options) []byte {
	e.t.Helper()
	return e.exportFrom(e.source(), taskID, opts)
}

// exportIndexed exports taskID with the ledger's query index, which also
// finds the events that name the task but its state does not keep.
func (e *env) exportIndexed(taskID string) []byte {
	e.t.Helper()
	src := e.source()
	src.Index = e.index()
	return e.exportFrom(src, taskID, evidence.Options{})
}

func (e *env) exportFrom(src evidence.Source, taskID string, opts evidence.Options) []byte {
	e.t.Helper()
	var b bytes.Buffer
	if err := evidence.Export(context.Background(), src, taskID, opts, &b); err != nil {
		e.t.Fatalf("Export: %v", err)
	}
	return b.Bytes()
}

// index opens the ledger's query index in the store's database.
func (e *env) index() *query.Index {
	e.t.Helper()
	ix, err := query.New(context.Background(), query.Config{DB: e.store.DB(), Store: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	return ix
}

func verify(t testing.TB, bundle []byte, opts evidence.VerifyOptions) *evidence.Report {
	t.Helper()
	r, err := evidence.Verify(bytes.NewReader(bundle), int64(len(bundle)), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// unzip returns a bundle's files by path.
func unzip(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = data
	}
	return out
}

// rezip writes files back into a zip. With reseal, the manifest's file
// list is recomputed first, as a forger who edits the manifest would.
func rezip(t testing.TB, files map[string][]byte, reseal bool) []byte {
	t.Helper()
	if reseal {
		var m evidence.Manifest
		if err := json.Unmarshal(files[evidence.ManifestPath], &m); err != nil {
			t.Fatal(err)
		}
		m.Files = nil
		for p, data := range files {
			if p == evidence.ManifestPath {
				continue
			}
			sum := sha256.Sum256(data)
			m.Files = append(m.Files, evidence.File{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
		}
		sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
		files[evidence.ManifestPath], _ = json.MarshalIndent(m, "", "  ")
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, _ := zw.Create(p)
		w.Write(files[p])
	}
	zw.Close()
	return b.Bytes()
}

// eventLines splits events.jsonl.
func eventLines(files map[string][]byte) []string {
	return strings.Split(strings.TrimSuffix(string(files[evidence.EventsPath]), "\n"), "\n")
}

func setEventLines(files map[string][]byte, lines []string) {
	files[evidence.EventsPath] = []byte(strings.Join(lines, "\n") + "\n")
}

// lineOf returns the position in events.jsonl of the first event of type typ.
func lineOf(t testing.TB, files map[string][]byte, typ string) (int, uint64) {
	t.Helper()
	for i, l := range eventLines(files) {
		var el struct {
			Index uint64          `json:"index"`
			Event json.RawMessage `json:"event"`
		}
		json.Unmarshal([]byte(l), &el)
		var ev struct {
			Type string `json:"type"`
		}
		json.Unmarshal(el.Event, &ev)
		if ev.Type == typ {
			return i, el.Index
		}
	}
	t.Fatalf("no %s event in the bundle", typ)
	return 0, 0
}

// verifierFromSigner derives a verifier key from the parts of a signer key
// PRIVATE+KEY+name+hash+base64(0x01||seed).
func verifierFromSigner(t testing.TB, parts []string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 {
		t.Fatal("bad signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vk, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		t.Fatal(err)
	}
	return vk
}
