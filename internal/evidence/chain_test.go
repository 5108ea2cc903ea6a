package evidence_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/ledger"
)

func TestErasedBodyVerifies(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(1)
	tk, _ := e.svc.Get(id)
	if _, err := e.led.Erase(context.Background(), ledger.BodyRef{Index: tk.RequestedIndex, Name: "intent"}, "GDPR request 7", "oidc:test#admin"); err != nil {
		t.Fatal(err)
	}
	b := e.export(id, evidence.Options{})
	f := unzip(t, b)
	var m evidence.Manifest
	json.Unmarshal(f[evidence.ManifestPath], &m)
	if len(m.Erased) != 1 || m.Erased[0].Index != tk.RequestedIndex {
		t.Fatalf("manifest erased = %+v", m.Erased)
	}
	if r := verify(t, b, evidence.VerifyOptions{Key: e.vkey}); !r.OK() || r.Erased != 1 {
		t.Fatalf("bundle with an erased body: %+v", r)
	}
	// Without the erasure event, the missing body is a failure.
	cutEvent(t, f, len(eventLines(f))-1, m.Erased[0].ErasureIndex)
	r := verify(t, rezip(t, f, true), evidence.VerifyOptions{Key: e.vkey})
	if r.OK() || !strings.Contains(failures(r), "no such erasure is in the bundle") {
		t.Errorf("erasure dropped: %s", failures(r))
	}
}

func TestChildTaskExport(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	parent, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "parent", Scope: scope("internal", "dev"), TTL: "15m"})
	if err != nil || parent.State != api.StateActive {
		t.Fatalf("parent: %+v %v", parent, err)
	}
	e.credential(parent.TaskID)
	narrow := scope("internal", "dev")
	narrow.Tools = []string{"invoices.read"}
	child, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "child", Scope: narrow, TTL: "10m", Parent: &parent.TaskID})
	if err != nil || child.State != api.StateActive {
		t.Fatalf("child: %+v %v", child, err)
	}
	if _, err := e.svc.Revoke(ctx, alice, parent.TaskID, "done"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{parent.TaskID, child.TaskID} {
		b := e.export(id, evidence.Options{})
		if r := verify(t, b, evidence.VerifyOptions{Key: e.vkey}); !r.OK() {
			t.Errorf("export of %s: %s", id, failures(r))
		}
	}
	var m evidence.Manifest
	json.Unmarshal(unzip(t, e.export(child.TaskID, evidence.Options{}))[evidence.ManifestPath], &m)
	if len(m.Ancestors) != 1 || m.Ancestors[0] != parent.TaskID {
		t.Errorf("child's ancestors = %v", m.Ancestors)
	}
	json.Unmarshal(unzip(t, e.export(parent.TaskID, evidence.Options{}))[evidence.ManifestPath], &m)
	if len(m.Tasks) != 2 || m.Tasks[1] != child.TaskID {
		t.Errorf("parent's tasks = %v", m.Tasks)
	}
}

func TestExportWindow(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(3)
	all := verify(t, e.export(id, evidence.Options{}), evidence.VerifyOptions{Key: e.vkey})
	// A window in the future keeps the lifecycle and drops every action.
	b := e.export(id, evidence.Options{From: time.Now().Add(time.Hour)})
	r := verify(t, b, evidence.VerifyOptions{Key: e.vkey})
	if !r.OK() {
		t.Fatalf("windowed bundle: %s", failures(r))
	}
	if r.Events >= all.Events {
		t.Errorf("window kept %d of %d events", r.Events, all.Events)
	}
	for _, l := range eventLines(unzip(t, b)) {
		if strings.Contains(l, `"type":"action.`) {
			t.Errorf("action outside the window exported: %s", l)
		}
	}
}

func TestExportUnknownTask(t *testing.T) {
	e := newEnv(t, "prod")
	var sb strings.Builder
	if err := evidence.Export(context.Background(), e.source(), "tsk_nope", evidence.Options{}, &sb); err == nil {
		t.Fatal("export of an unknown task succeeded")
	}
}

func failures(r *evidence.Report) string {
	var out []string
	for _, f := range r.Failures {
		out = append(out, f.String())
	}
	return strings.Join(out, "\n")
}

// TestIndexAddsEventsStateDoesNotKeep: an event imported from another
// system names the task but is not kept by the task state; with the index,
// the bundle carries it.
func TestIndexAddsEventsStateDoesNotKeep(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(1)
	ctx := context.Background()
	idx, err := e.led.Append(ctx, ledger.Event{Type: "import.siem.alert", TaskID: id, Agent: agent,
		Data: json.RawMessage(`{"rule":"mass read of invoices","severity":"high"}`)})
	if err != nil {
		t.Fatal(err)
	}
	bundle := e.exportIndexed(id)
	f := unzip(t, bundle)
	if _, ok := f["proofs/"+jsonInt(int(idx))+".tlog-proof"]; !ok {
		t.Errorf("the imported event %d is not in the bundle", idx)
	}
	if r := verify(t, bundle, evidence.VerifyOptions{Key: e.vkey}); !r.OK() {
		t.Errorf("bundle with the index's events: %s", failures(r))
	}
	// The policy version's load, before its first decision, comes along.
	if !strings.Contains(string(f[evidence.EventsPath]), `"type":"policy.loaded"`) {
		t.Error("the bundle has no policy.loaded event")
	}
	if !strings.Contains(string(f[evidence.ReportPath]), "loaded ") {
		t.Error("the report does not say when the policy version was loaded")
	}
}

// TestHiddenToolsInOCSF: tools withheld from a listing appear as a denied
// authorization of the listing.
func TestHiddenToolsInOCSF(t *testing.T) {
	e := newEnv(t, "prod")
	id := e.story(1)
	ctx := context.Background()
	if _, err := e.led.Append(ctx, ledger.Event{Type: ledger.TypeToolsHidden, TaskID: id, Agent: agent, PolicyVersion: e.pol.Version(),
		Data: json.RawMessage(`{"hidden":[{"decision_id":"dec_1","policy_ids":[],"tool":"crm.delete"}],"listed":4,"server":"crm"}`)}); err != nil {
		t.Fatal(err)
	}
	bundle := e.exportIndexed(id)
	if r := verify(t, bundle, evidence.VerifyOptions{Key: e.vkey}); !r.OK() {
		t.Fatalf("bundle: %s", failures(r))
	}
	ocsf := string(unzip(t, bundle)[evidence.OCSFPath])
	if !strings.Contains(ocsf, `"operation":"tools/list"`) || !strings.Contains(ocsf, `{"uid":"crm.delete","type":"tool"}`) ||
		!strings.Contains(ocsf, `"status_detail":"1 of 4 listed tools hidden"`) {
		t.Errorf("no record of the hidden tool:\n%s", ocsf)
	}
}
