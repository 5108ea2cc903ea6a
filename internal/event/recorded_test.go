package event_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/abuse"
	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/identity"
	"github.com/writhq/writ/internal/jcs"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
	"github.com/writhq/writ/internal/witness"
)

// activePolicy decides every point, with the obligations the data types
// carry: a TTL cap, approvals, redaction, an output not recorded, and a
// sender-constrained credential.
const activePolicy = `package writ

decision := {"deny": deny, "approval": approval, "permit": permit}

deny contains {"id": "task-restricted", "reason": "restricted tasks are refused"} if {
	input.point == "task"
	input.derived.ceiling_level >= 3
}

approval contains {"id": "task-confidential", "reason": "confidential tasks need an approval", "obligations": {"approvals": 1}} if {
	input.point == "task"
	input.derived.ceiling_level == 2
}

permit contains {"id": "task-ttl", "obligations": {"max_ttl": 3600}} if input.point == "task"

permit contains {"id": "exchange-ttl", "obligations": {"max_ttl": 600}} if input.point == "exchange"

deny contains {"id": "action-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "action"
	input.derived.tool_in_scope == false
}

approval contains {"id": "action-step-up", "reason": "resource is outside the task scope", "obligations": {"approvals": 1}} if {
	input.point == "action"
	input.derived.tool_in_scope
	input.derived.resource_in_scope == false
}

permit contains {"id": "action-allow", "obligations": {"redact": ["arguments.password"], "record_output": true}} if {
	input.point == "action"
	input.action.tool != "reports.read"
}

permit contains {"id": "action-unrecorded", "obligations": {"record_output": false}} if {
	input.point == "action"
	input.action.tool == "reports.read"
}

permit contains {"id": "action-bound", "obligations": {"require_binding": true}} if {
	input.point == "action"
	input.action.tool == "payments.send"
}

deny contains {"id": "list-tool-out-of-scope", "reason": "tool is not in the task scope"} if {
	input.point == "list"
	input.derived.tool_in_scope == false
}

permit contains {"id": "list-visible"} if input.point == "list"
`

// candidatePolicy denies everything, so it disagrees with every decision
// the active policy allows.
const candidatePolicy = `package writ

decision := {"deny": {{"id": "candidate-deny", "reason": "the candidate denies everything"}}, "approval": set(), "permit": set()}
`

const agent = "spiffe://writ.test/agent/events"

var (
	alice = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#alice", Roles: []identity.Role{identity.RoleRequester}}
	bob   = identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#bob", Roles: []identity.Role{identity.RoleApprover}}
)

func scope(class string) api.Scope {
	return api.Scope{Tools: []string{"invoices.*", "reports.read", "payments.send"}, Resources: []string{"erp://invoices/2026-Q3/*"},
		Operations: []string{"read", "send"}, DataClass: class, Environments: []string{"prod"}}
}

func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// world is writ's writers of events over one SQLite ledger, as the server
// wires them: policy, the task service, the rate limiter and the identity
// edge.
type world struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	store  *sqlite.Store
	led    *ledger.Ledger
	pol    *policy.Policy
	svc    *task.Service
	limits *abuse.Limiter
	auth   *identity.Authenticator
	clk    *testkit.Clock
	// verifier checks the log's checkpoints.
	verifier note.Verifier
}

func newWorld(t *testing.T, shadowDir string) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), dir: t.TempDir(),
		clk: testkit.NewClock(time.Now().UTC().Truncate(time.Second))}
	var err error
	if w.store, err = sqlite.Open(w.ctx, filepath.Join(w.dir, "writ.db")); err != nil {
		t.Fatal(err)
	}
	kp, _, err := ledger.LoadOrCreateKey(w.dir, "writ.test/events")
	if err != nil {
		t.Fatal(err)
	}
	w.verifier = kp.Verifier()
	if w.led, err = ledger.New(w.ctx, ledger.Config{Store: w.store, Signer: kp}); err != nil {
		t.Fatal(err)
	}
	w.pol, err = policy.New(w.ctx, policy.Config{Dir: writeBundle(t, map[string]string{"writ.rego": activePolicy}),
		ShadowDir: shadowDir, Recorder: w.led, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = task.New(w.ctx, task.Config{Ledger: w.led, Eraser: w.led, Store: w.store, Policy: w.pol, DB: w.store.DB(),
		Environment: "prod", Now: w.clk.Now, SweepInterval: -1,
		Origin: kp.Name(), Verifier: kp.Verifier(), DigestKey: kp.DigestKey()})
	if err != nil {
		t.Fatal(err)
	}
	rl := config.DefaultRateLimits()
	rl.Rejections.PerSource = 1
	if w.limits, err = abuse.New(rl, abuse.Options{Recorder: w.led, Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	w.auth, err = identity.New(w.ctx, config.DefaultIdentity(), identity.Options{Dev: true, DataDir: w.dir, Recorder: w.led, Limits: w.limits})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// close stops every writer, so that all they queued is in the ledger,
// and returns the ledger's entries.
func (w *world) close() []ledger.Entry {
	t := w.t
	t.Helper()
	if err := w.svc.Close(); err != nil {
		t.Error(err)
	}
	if err := w.pol.Close(); err != nil {
		t.Error(err)
	}
	if err := w.limits.Close(w.ctx); err != nil {
		t.Error(err)
	}
	if err := w.auth.Close(); err != nil {
		t.Error(err)
	}
	if err := w.led.Close(w.ctx); err != nil {
		t.Error(err)
	}
	var out []ledger.Entry
	err := w.store.ScanLeaves(w.ctx, 0, func(i uint64, leaf []byte) error {
		ent, err := ledger.ParseLeaf(i, slices.Clone(leaf))
		out = append(out, ent)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.Close(); err != nil {
		t.Error(err)
	}
	return out
}

func (w *world) open(who identity.Principal, s api.Scope, ttl string, parent *string) api.TaskOpened {
	w.t.Helper()
	out, err := w.svc.Open(w.ctx, who, api.OpenTask{Agent: agent, Intent: "check the Q3 invoices", Scope: s, TTL: ttl, Parent: parent})
	if err != nil {
		w.t.Fatalf("opening a task: %v", err)
	}
	return out
}

// credential issues a task credential through the exchange point.
func (w *world) credential(taskID string, s api.Scope) task.VerifiedCredential {
	w.t.Helper()
	now := w.clk.Now()
	in := &policy.Input{
		Principal:  policy.Principal{ID: alice.ID},
		Agent:      policy.Agent{ID: agent},
		Task:       policy.Task{ID: taskID, Scope: policy.Scope(s), State: string(task.StateActive)},
		Credential: &policy.Credential{Binding: "none"},
		Request:    policy.Request{Time: now, Environment: "prod", Gateway: "token"},
	}
	dec := w.pol.Evaluate(w.ctx, policy.PointExchange, in)
	if !dec.Allowed() {
		w.t.Fatalf("exchange for %s: %+v", taskID, dec)
	}
	c := task.Credential{JTI: "jti-" + taskID, TaskID: taskID, Agent: agent, ExpiresAt: now.Add(5 * time.Minute), Binding: "none"}
	if err := w.svc.RecordExchange(w.ctx, c, dec, in); err != nil {
		w.t.Fatalf("recording the exchange: %v", err)
	}
	return task.VerifiedCredential{JTI: c.JTI, TaskID: taskID, Agent: agent, Subject: alice.ID, Expiry: c.ExpiresAt, Binding: "none"}
}

func (w *world) authorize(cred task.VerifiedCredential, tool, resource, args string) api.Authorized {
	w.t.Helper()
	out, err := w.svc.Authorize(w.ctx, cred, api.Authorize{Tool: tool, Operation: "read", Resource: resource,
		Arguments: json.RawMessage(args), DataClass: "internal"}, task.Request{Gateway: "api", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"})
	if err != nil {
		w.t.Fatalf("authorizing %s on %s: %v", tool, resource, err)
	}
	return out
}

func (w *world) result(cred task.VerifiedCredential, actionID, output string) {
	w.t.Helper()
	if _, err := w.svc.RecordResult(w.ctx, cred, actionID, api.ActionResult{Status: "ok", Output: json.RawMessage(output)}); err != nil {
		w.t.Fatalf("recording the result of %s: %v", actionID, err)
	}
}

func (w *world) decide(who identity.Principal, approvalID, decision string) error {
	_, err := w.svc.DecideApproval(w.ctx, who, approvalID, api.Decide{Decision: decision, Reason: "checked by " + who.ID})
	return err
}

// refuse sends a request with the bearer token tok from addr through the
// rate limiter and the identity edge, to an endpoint for admins.
func (w *world) refuse(addr, tok string) {
	w.t.Helper()
	h := w.limits.Middleware(w.auth.RequireRole(identity.RoleAdmin)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		w.t.Error("a refused request was served")
	})))
	r := httptest.NewRequest(http.MethodGet, "/v1/ledger/events", nil)
	r.RemoteAddr = addr
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusForbidden && rec.Code != http.StatusTooManyRequests {
		w.t.Fatalf("request with a refused credential: %d %s", rec.Code, rec.Body)
	}
}

// run drives every writer of events through what it records: tasks and
// their approvals, credentials, calls and ends; policy loads, rejections
// and disagreements; refused requests one by one and summarized; a hidden
// listing; an erasure.
func (w *world) run(shadowDir string) {
	t, ctx := w.t, w.ctx

	// A task, its credential and its calls.
	t1 := w.open(alice, scope("internal"), "30m", nil)
	c1 := w.credential(t1.TaskID, scope("internal"))
	a := w.authorize(c1, "invoices.read", "erp://invoices/2026-Q3/1", `{"id": 1, "password": "hunter2"}`)
	w.result(c1, a.ActionID, `{"total": 3}`)
	b := w.authorize(c1, "reports.read", "erp://invoices/2026-Q3/2", `{"id": 2}`)
	w.result(c1, b.ActionID, `{"rows": 2}`)
	if out := w.authorize(c1, "payments.send", "erp://invoices/2026-Q3/3", `{}`); out.Allow {
		t.Fatal("an unbound credential passed a call that requires binding")
	}
	if out := w.authorize(c1, "hr.read", "erp://invoices/2026-Q3/4", `{}`); out.Allow {
		t.Fatal("a tool out of scope passed")
	}

	// A step-up granted and consumed, one the requester tries to approve
	// and an approver denies.
	held := w.authorize(c1, "invoices.read", "erp://payroll/2026-Q3", `{"id": 5}`)
	if !held.ApprovalRequired {
		t.Fatalf("a resource out of scope: %+v, want a step-up", held)
	}
	if err := w.decide(bob, held.ApprovalID, "approve"); err != nil {
		t.Fatal(err)
	}
	if out := w.authorize(c1, "invoices.read", "erp://payroll/2026-Q3", `{"id": 5}`); !out.Allow {
		t.Fatalf("the approved call: %+v", out)
	}
	other := w.authorize(c1, "invoices.read", "erp://payroll/2026-Q4", `{"id": 6}`)
	if err := w.decide(alice, other.ApprovalID, "approve"); err == nil {
		t.Fatal("the requester approved their own step-up")
	}
	if err := w.decide(bob, other.ApprovalID, "deny"); err != nil {
		t.Fatal(err)
	}

	// A listing that hides a tool out of scope and one whose resource has
	// no normal form.
	vis, err := w.svc.Visible(ctx, c1, "erp", []task.ListedTool{
		{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"},
		{Tool: "hr.read", Operation: "read"},
		{Tool: "invoices.list", Operation: "read", Resource: "erp://invoices/../payroll"},
	}, task.Request{Gateway: "mcp"})
	if err != nil || !slices.Equal(vis, []bool{true, false, false}) {
		t.Fatalf("visible: %v, %v", vis, err)
	}

	// A refusal recorded from above the task service.
	if err := w.svc.RecordRejection(ctx, task.Rejection{TaskID: t1.TaskID, Agent: agent, Reason: "invalid_token", Detail: "signature does not verify"}); err != nil {
		t.Fatal(err)
	}

	// A child task, and its parent revoked under it; the parent's
	// credential used after that.
	t2 := w.open(alice, api.Scope{Tools: []string{"invoices.read"}, Resources: []string{"erp://invoices/2026-Q3/1"},
		Operations: []string{"read"}, DataClass: "internal", Environments: []string{"prod"}}, "10m", &t1.TaskID)
	if _, err := w.svc.Revoke(ctx, alice, t1.TaskID, "the invoices are checked elsewhere"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Authorize(ctx, c1, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}, task.Request{}); err == nil {
		t.Fatal("a revoked credential was used")
	}
	if got, err := w.svc.Get(t2.TaskID); err != nil || got.State != task.StateRevoked {
		t.Fatalf("child task after its parent's revocation: %+v, %v", got, err)
	}

	// Task approvals granted, denied and let expire; a task denied by
	// policy; one completed.
	t3 := w.open(alice, scope("confidential"), "", nil)
	if t3.State != api.StatePendingApproval {
		t.Fatalf("a confidential task: %+v", t3)
	}
	if _, err := w.svc.DecideTask(ctx, bob, t3.TaskID, api.Decide{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Complete(ctx, alice, t3.TaskID); err != nil {
		t.Fatal(err)
	}
	t4 := w.open(alice, scope("confidential"), "", nil)
	if _, err := w.svc.DecideTask(ctx, bob, t4.TaskID, api.Decide{Decision: "deny", Reason: "not this quarter"}); err != nil {
		t.Fatal(err)
	}
	if t5 := w.open(alice, scope("restricted"), "", nil); t5.State != api.StateDenied {
		t.Fatalf("a restricted task: %+v", t5)
	}
	w.open(alice, scope("confidential"), "", nil) // left to expire pending

	// A task that expires with a call in flight.
	t6 := w.open(alice, scope("internal"), "10s", nil)
	c6 := w.credential(t6.TaskID, scope("internal"))
	inFlight := w.authorize(c6, "invoices.read", "erp://invoices/2026-Q3/7", `{"id": 7}`)
	w.clk.Add(2 * time.Hour)
	if n, err := w.svc.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep: %d tasks expired, %v; want 2", n, err)
	}
	held6, err := w.svc.RecordHeldResult(ctx, c6, inFlight.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"n": 7}`)}, task.Request{})
	if err != nil || held6.Cancelled == "" {
		t.Fatalf("the result of a call whose task expired: %+v, %v", held6, err)
	}

	// Refused requests at the HTTP edge: a token that is no JWT, from one
	// address past its budget (summarized); a requester without the role.
	for range 3 {
		w.refuse("192.0.2.1:4000", "not-a-jwt")
	}
	tok, err := identity.DevToken(w.dir, "carol", []identity.Role{identity.RoleRequester}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.refuse("192.0.2.2:4000", tok)
	if err := w.limits.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Candidate bundles rejected, before and after their version is known.
	if err := os.WriteFile(filepath.Join(shadowDir, "broken.rego"), []byte("package writ\n\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.pol.Reload(ctx); !errors.Is(err, policy.ErrCompile) {
		t.Fatalf("reloading a broken candidate: %v", err)
	}
	if err := os.Remove(filepath.Join(shadowDir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shadowDir, "mixed.cedar"), []byte("permit (principal, action, resource);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.pol.Reload(ctx); err == nil {
		t.Fatal("a candidate of two engines loaded")
	}

	// An erasure.
	chain, err := w.svc.Chain(t1.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	erased := false
	for _, i := range chain.Events {
		if _, err := w.led.Erase(ctx, ledger.BodyRef{Index: i, Name: "output"}, "erased on request", alice.ID); err == nil {
			erased = true
			break
		} else if !errors.Is(err, ledger.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if !erased {
		t.Fatal("no output to erase")
	}

	// A legal hold placed and lifted; an erasure forced through a hold,
	// and one by retention.
	auditor := identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#audrey", Roles: []identity.Role{identity.RoleAuditor}}
	admin := identity.Principal{Kind: identity.KindHuman, ID: "oidc:test#root", Roles: []identity.Role{identity.RoleAdmin}}
	if _, err := w.svc.Hold(ctx, auditor, t3.TaskID, "litigation 2026-14"); err != nil {
		t.Fatal(err)
	}
	t3task, err := w.svc.Get(t3.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.EraseBody(ctx, admin, ledger.BodyRef{Index: t3task.RequestedIndex, Name: "intent"}, "court order 5", true); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Release(ctx, auditor, t3.TaskID, "case closed"); err != nil {
		t.Fatal(err)
	}
	gone, _, err := w.svc.EraseUnheld(ctx, []task.BodyErasure{{TaskID: t3.TaskID, Erasure: ledger.Erasure{
		Ref: ledger.BodyRef{Index: t3task.RequestedIndex + 1, Name: "input"}, Reason: ledger.ReasonRetention,
		Retention: &ledger.RetentionRule{Type: ledger.TypePolicyDecided, Body: "input", DataClass: "confidential", Keep: "180d", Minimum: "180d"}}}})
	if err != nil || len(gone) != 1 {
		t.Fatalf("a retention erasure: %v, %v", gone, err)
	}

	w.witnessRefusal()
}

// witnessRefusal runs the witness loop against a witness that refuses the
// log's checkpoints (a 403: it does not trust the log's key), until the
// loop has recorded the refusal.
func (w *world) witnessRefusal() {
	t := w.t
	refusing := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "unknown log key", http.StatusForbidden)
	}))
	defer refusing.Close()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := witness.NewKey("witness.test/w1", pub)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := witness.New(witness.Config{Witnesses: []witness.Witness{{URL: refusing.URL + "/", Key: key}},
		Interval: 10 * time.Millisecond, Log: w.store, Store: w.store, Verifier: w.verifier, Recorder: w.led})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	loop.Notify()
	testkit.Eventually(t, 10*time.Second, func() error {
		found := false
		err := w.store.ScanLeaves(w.ctx, 0, func(i uint64, leaf []byte) error {
			ent, err := ledger.ParseLeaf(i, leaf)
			found = found || (err == nil && ent.Event.Type == ledger.TypeWitnessRefused)
			return err
		})
		if err == nil && !found {
			err = errors.New("no witness.refused recorded yet")
		}
		return err
	})
	if err := loop.Close(w.ctx); err != nil {
		t.Error(err)
	}
}

// TestRecordedEventsRoundTrip runs every writer of writ's events and
// decodes every event recorded by its type, strictly, then encodes it
// again: the canonical bytes must be those of the leaf. A member the type
// lacks fails the decoding; one the type drops, renames or spells
// differently fails the comparison. Every type and shape must be among
// them but ledger.started, which writ does not write.
func TestRecordedEventsRoundTrip(t *testing.T) {
	shadowDir := writeBundle(t, map[string]string{"candidate.rego": candidatePolicy})
	w := newWorld(t, shadowDir)
	w.run(shadowDir)
	entries := w.close()

	seen := map[reflect.Type]int{}
	for _, ent := range entries {
		ev := ent.Event
		if !ledger.KnownType(ev.Type) || len(event.Shapes(ev.Type)) == 0 {
			t.Errorf("event %d: type %q has no data type", ent.Index, ev.Type)
			continue
		}
		for name := range ent.Commitments {
			if !slices.Contains(event.Bodies(ev.Type), name) {
				t.Errorf("event %d (%s) carries body %q, which event.Bodies does not list", ent.Index, ev.Type, name)
			}
		}
		d, err := event.Decode(ev)
		if err != nil {
			t.Errorf("event %d: %v\n%s", ent.Index, err, ev.Data)
			continue
		}
		seen[reflect.TypeOf(d)]++
		if !slices.Contains(event.Shapes(ev.Type), reflect.TypeOf(d)) {
			t.Errorf("event %d (%s) decoded as %T, not one of its shapes", ent.Index, ev.Type, d)
		}
		if err := sameData(ev.Data, d); err != nil {
			t.Errorf("event %d (%s, as %T): %v", ent.Index, ev.Type, d, err)
		}
		if r, err := event.Read(ev); err != nil || !reflect.DeepEqual(r, d) {
			t.Errorf("event %d (%s): Read gives %+v, %v; Decode %+v", ent.Index, ev.Type, r, err, d)
		}
	}
	for _, typ := range event.Types() {
		for _, s := range event.Shapes(typ) {
			if seen[s] == 0 && typ != ledger.TypeLedgerStarted {
				t.Errorf("no %s event recorded as %v", typ, s)
			}
		}
	}
	t.Logf("%d events; by data type: %v", len(entries), seen)
}

// sameData checks that v, encoded as writ's writers encode it, is data
// byte for byte once canonical (the leaf's data is canonical already).
func sameData(data json.RawMessage, v any) error {
	want, err := jcs.Canonicalize(data)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, data) {
		return fmt.Errorf("the leaf's data is not canonical: %s", data)
	}
	got, err := jcs.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("re-encoded as\n%s\nrecorded as\n%s", got, want)
	}
	return nil
}
