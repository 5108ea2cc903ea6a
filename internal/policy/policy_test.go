package policy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/testkit"
)

// memRecorder is an in-memory ledger.
type memRecorder struct{ testkit.Recorder }

func (r *memRecorder) types() []string {
	var ts []string
	for _, e := range r.Events() {
		ts = append(ts, e.Type)
	}
	return ts
}

func (r *memRecorder) last() ledger.Event {
	events := r.Events()
	return events[len(events)-1]
}

// writePack writes the default pack for engine into a new directory.
func writePack(t *testing.T, engine string) string {
	t.Helper()
	src, err := DefaultPack(engine)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range src.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Path), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newPolicy starts a Policy on cfg, closed when the test ends.
func newPolicy(t *testing.T, cfg Config) *Policy {
	t.Helper()
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func inScopeAction() *Input {
	in := mkInput("dev", baseScope, &Action{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"})
	return &in
}

func TestNewDefaultPack(t *testing.T) {
	ctx := context.Background()
	rec := &memRecorder{}
	store := NewMemStore()
	p := newPolicy(t, Config{Recorder: rec, Sources: store})
	src, _ := DefaultPack(EngineRego)
	if p.Version() != Version(src) || p.Engine() != EngineRego {
		t.Fatalf("version %s engine %s, want the embedded rego pack %s", p.Version(), p.Engine(), Version(src))
	}
	if _, err := store.Get(ctx, p.Version()); err != nil {
		t.Fatalf("sources not stored: %v", err)
	}
	e := rec.last()
	if e.Type != ledger.TypePolicyLoaded || e.PolicyVersion != p.Version() {
		t.Fatalf("event %+v, want policy.loaded of %s", e, p.Version())
	}
	var data event.PolicyLoaded
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Version != p.Version() || data.Engine != "rego" || data.Source != "embedded:rego" || len(data.Files) != len(src.Files) {
		t.Errorf("policy.loaded data %+v", data)
	}
	for i, f := range data.Files {
		if f.Path != src.Files[i].Path || f.SHA256 != FileDigest(src.Files[i].Data) {
			t.Errorf("file %d: %+v", i, f)
		}
	}
	d := p.Evaluate(ctx, PointAction, inScopeAction())
	if d.Effect != Allow || d.PolicyVersion != p.Version() || !strings.HasPrefix(d.ID, "dec_") || len(d.ID) != 30 {
		t.Errorf("decision %+v", d)
	}
	if d2 := p.Evaluate(ctx, PointAction, inScopeAction()); d2.ID == d.ID {
		t.Error("decision IDs repeat")
	}
}

func TestReloadRejectsBrokenBundle(t *testing.T) {
	for _, engine := range []string{EngineRego, EngineCedar} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dir := writePack(t, engine)
			rec := &memRecorder{}
			p := newPolicy(t, Config{Dir: dir, Recorder: rec})
			v1 := p.Version()
			if err := p.Reload(ctx); err != nil {
				t.Fatalf("reload of unchanged bundle: %v", err)
			}
			if n := len(rec.types()); n != 1 {
				t.Fatalf("unchanged reload recorded events: %v", rec.types())
			}
			name := "writ." + engine
			if err := os.WriteFile(filepath.Join(dir, name), []byte("this is not policy {"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := p.Reload(ctx)
			if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), name) {
				t.Fatalf("Reload = %v, want ErrCompile naming %s", err, name)
			}
			if p.Version() != v1 {
				t.Fatal("broken bundle replaced the active one")
			}
			if e := rec.last(); e.Type != ledger.TypePolicyRejected || !strings.Contains(string(e.Data), name) {
				t.Fatalf("last event %s %s, want policy.rejected", e.Type, e.Data)
			}
			if d := p.Evaluate(ctx, PointAction, inScopeAction()); d.Effect != Allow {
				t.Errorf("old bundle no longer decides: %+v", d)
			}
		})
	}
}

func TestReloadActivatesNewVersionOnlyWhenRecorded(t *testing.T) {
	ctx := context.Background()
	dir := writePack(t, EngineCedar)
	rec := &memRecorder{}
	p := newPolicy(t, Config{Dir: dir, Recorder: rec})
	v1 := p.Version()
	deny := "@id(\"no-mail\")\n@reason(\"mail is off\")\nforbid (principal, action, resource == Tool::\"mail.send\");\n"
	os.WriteFile(filepath.Join(dir, "extra.cedar"), []byte(deny), 0o600)

	rec.Fail(errors.New("disk full"))
	if err := p.Reload(ctx); err == nil || p.Version() != v1 {
		t.Fatalf("version activated without its policy.loaded event: %v", err)
	}
	rec.Fail(nil)
	if err := p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Version() == v1 || rec.last().Type != ledger.TypePolicyLoaded || rec.last().PolicyVersion != p.Version() {
		t.Fatalf("new version not active and recorded: %s %v", p.Version(), rec.types())
	}
	in := mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "send", Resource: "mail://finance"})
	if d := p.Evaluate(ctx, PointAction, &in); d.Effect != Deny || d.Reasons[0] != "mail is off" {
		t.Errorf("new policy not enforced: %+v", d)
	}
}

func TestWatchReloads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := writePack(t, EngineRego)
	rec := &memRecorder{}
	p := newPolicy(t, Config{Dir: dir, Recorder: rec, Debounce: 10 * time.Millisecond})
	if err := p.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := p.Version()
	extra := "package writ\n\ndeny contains {\"id\": \"no-mail\", \"reason\": \"mail is off\"} if input.action.tool == \"mail.send\"\n"
	if err := os.WriteFile(filepath.Join(dir, "extra.rego"), []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if p.Version() == v1 {
			return errors.New("no reload after a file change")
		}
		return nil
	})
	if rec.last().Type != ledger.TypePolicyLoaded {
		t.Errorf("events %v", rec.types())
	}
}

func TestShadowDisagreementsRecorded(t *testing.T) {
	ctx := context.Background()
	shadowDir := writePack(t, EngineCedar)
	deny := "@id(\"no-mail\")\n@reason(\"mail is off\")\nforbid (principal, action, resource == Tool::\"mail.send\");\n"
	os.WriteFile(filepath.Join(shadowDir, "extra.cedar"), []byte(deny), 0o600)
	rec := &memRecorder{}
	p := newPolicy(t, Config{Recorder: rec, ShadowDir: shadowDir})
	agree := p.Evaluate(ctx, PointAction, inScopeAction())
	mail := mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "send", Resource: "mail://finance"})
	mail.Task.ID = "tsk_mail"
	disagree := p.Evaluate(ctx, PointAction, &mail)
	p.Close()

	if agree.Shadow == nil || !agree.Shadow.Agrees {
		t.Errorf("rego and cedar default packs should agree: %+v", agree.Shadow)
	}
	if disagree.Effect != Allow {
		t.Fatalf("shadow bundle was enforced: %+v", disagree)
	}
	if disagree.Shadow == nil || disagree.Shadow.Agrees || disagree.Shadow.Effect != Deny {
		t.Fatalf("shadow result %+v, want a disagreeing deny", disagree.Shadow)
	}
	var shadows []ledger.Event
	for _, e := range rec.Events() {
		if e.Type == ledger.TypePolicyShadow {
			shadows = append(shadows, e)
		}
	}
	if len(shadows) != 1 {
		t.Fatalf("%d shadow events, want 1 (only the disagreement)", len(shadows))
	}
	e := shadows[0]
	if e.DecisionID != disagree.ID || e.TaskID != "tsk_mail" || e.PolicyVersion != p.Version() || len(e.Bodies["input"]) == 0 {
		t.Errorf("shadow event %+v", e)
	}
	if !strings.Contains(string(e.Data), "mail is off") {
		t.Errorf("shadow event data lacks the candidate's reason: %s", e.Data)
	}
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := writePack(t, EngineCedar)
	p := newPolicy(t, Config{Dir: dir, Sources: store})
	old := p.Version()
	in := mkInput("dev", baseScope, &Action{Tool: "mail.send", Operation: "send", Resource: "mail://finance"})
	before := p.Evaluate(ctx, PointAction, &in)

	os.WriteFile(filepath.Join(dir, "extra.cedar"), []byte("@id(\"no-mail\")\nforbid (principal, action, resource == Tool::\"mail.send\");\n"), 0o600)
	if err := p.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if now := p.Evaluate(ctx, PointAction, &in); now.Effect != Deny {
		t.Fatalf("new version: %+v", now)
	}
	got, err := Replay(ctx, store, old, PointAction, &in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.PolicyVersion != old || !sameResult(got.Result, before.Result) {
		t.Errorf("replay %+v, original %+v", got, before)
	}
	if _, err := Replay(ctx, store, Version(Sources{Engine: "rego"}), PointAction, &in, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("replay of unknown version: %v", err)
	}
}
