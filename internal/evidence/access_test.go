package evidence_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/task"
)

func TestAccessReport(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := context.Background()
	wide := api.Scope{Tools: []string{"invoices.*", "mail.*", "crm.*", "hr.*"}, Resources: []string{"erp://*"},
		Operations: []string{"read", "send"}, DataClass: "internal", Environments: []string{"dev", "staging"}}
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "everything", Scope: wide, TTL: "6h"})
	if err != nil || out.State != api.StateActive {
		t.Fatalf("open: %+v %v", out, err)
	}
	cred := e.credential(out.TaskID)
	for _, tool := range []string{"invoices.read", "mail.send", "crm.read"} {
		op := "read"
		if tool == "mail.send" {
			op = "send"
		}
		a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: tool, Operation: op, Resource: "erp://x/1", DataClass: "internal"}, task.Request{Gateway: "api"})
		if err != nil || !a.Allow {
			t.Fatalf("%s: %+v %v", tool, a, err)
		}
	}
	e.svc.Authorize(ctx, cred, api.Authorize{Tool: "payroll.read", Operation: "read", Resource: "erp://payroll/1"}, task.Request{Gateway: "api"})

	ix := e.index()
	rep, err := evidence.Access(ctx, ix, evidence.AccessOptions{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), LongTTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != 1 {
		t.Fatalf("agents: %+v", rep.Agents)
	}
	a := rep.Agents[0]
	if a.Allowed != 3 || a.Denied != 1 || !slices.Equal(a.UnusedTools, []string{"hr.*"}) || a.Tasks != 1 {
		t.Errorf("agent access: %+v", a)
	}
	if len(rep.LongTTL) != 1 || rep.LongTTL[0].TaskID != out.TaskID {
		t.Errorf("long TTL: %+v", rep.LongTTL)
	}
	if len(rep.BroadScopes) != 1 {
		t.Errorf("broad scopes: %+v", rep.BroadScopes)
	}
	if len(rep.Credentials) != 1 || rep.Credentials[0].JTI != cred.JTI || len(rep.Credentials[0].Families) != 3 {
		t.Errorf("spread credentials: %+v", rep.Credentials)
	}
	if len(rep.Limited) != 0 {
		t.Errorf("limited tasks before any: %+v", rep.Limited)
	}
	// A task with limits is listed with its calls.
	narrow := api.Scope{Tools: []string{"invoices.*"}, Resources: []string{"erp://x/*"}, Operations: []string{"read"},
		DataClass: "internal", Environments: []string{"dev"}}
	five := int64(5)
	narrow.Limits = &api.Limits{Calls: &five}
	lim, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "a few invoices", Scope: narrow, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	lcred := e.credential(lim.TaskID)
	for range 2 {
		if a, err := e.svc.Authorize(ctx, lcred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://x/2", DataClass: "internal"}, task.Request{Gateway: "api"}); err != nil || !a.Allow {
			t.Fatalf("limited task: %+v %v", a, err)
		}
	}
	rep, err = evidence.Access(ctx, e.index(), evidence.AccessOptions{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].Limited != 1 || rep.Agents[0].Tasks != 2 {
		t.Errorf("agents with a limited task: %+v", rep.Agents)
	}
	if len(rep.Limited) != 1 || rep.Limited[0].TaskID != lim.TaskID || rep.Limited[0].Allowed != 2 || rep.Limited[0].Limits.String() != "calls 5" {
		t.Errorf("limited tasks: %+v", rep.Limited)
	}
	// Another agent's report is empty.
	rep, _ = evidence.Access(ctx, ix, evidence.AccessOptions{Agent: "spiffe://example.org/agent/other"})
	if len(rep.Agents) != 0 || len(rep.LongTTL) != 0 {
		t.Errorf("other agent: %+v", rep)
	}
}
