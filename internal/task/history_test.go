package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// recordedHistory returns the history in the recorded policy input of the
// ledger's last action decision.
func recordedHistory(t *testing.T, e *env) *policy.History {
	t.Helper()
	size, err := e.store.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := size; i > 0; i-- {
		entry := leafAt(t, e, i-1)
		if entry.Event.Type != ledger.TypeActionAuthorized && entry.Event.Type != ledger.TypeActionDenied {
			continue
		}
		b, err := e.store.ReadBody(context.Background(), ledger.BodyRef{Index: i - 1, Name: "input"})
		if err != nil {
			t.Fatal(err)
		}
		in, err := policy.ParseInput(b.Data)
		if err != nil {
			t.Fatal(err)
		}
		if in.History == nil {
			t.Fatalf("event %d records no history: %s", i-1, b.Data)
		}
		return in.History
	}
	t.Fatal("no action decision")
	return nil
}

// TestHistory: what policy sees of a task's history, call by call: counts
// by tool and operation, in flight, the highest data class, resources and
// destinations reached, step-ups, and windows taken at the decision's time
// over the events' times, per task and per agent.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	s := scope("confidential", "dev")
	s.Resources = append(s.Resources, "mail://finance")
	opened, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "history", Scope: s, TTL: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	cred := e.credential(opened.TaskID)
	do := func(c api.Authorize) api.Authorized {
		t.Helper()
		a, err := e.svc.Authorize(ctx, cred, c, task.Request{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	pub := api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "public"}
	first := do(pub)
	if h := recordedHistory(t, e); !cmp.Equal(*h, policy.History{Version: 1, Task: policy.TaskHistory{MaxDataClassLevel: -1}}) {
		t.Errorf("the first call saw %+v, want an empty history", h)
	}
	e.clk.Add(10 * time.Second)
	do(pub)
	conf := pub
	conf.Resource, conf.DataClass = "erp://invoices/2026-Q3/2", "confidential"
	do(conf)
	do(api.Authorize{Tool: "shell.exec", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}) // denied
	do(api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2025/1"}) // step-up asked
	if _, err := e.svc.RecordResult(ctx, cred, first.ActionID, api.ActionResult{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(55 * time.Second)
	do(api.Authorize{Tool: "mail.send", Operation: "send", Resource: "mail://finance", DataClass: "internal"})

	want := policy.History{Version: 1,
		Task: policy.TaskHistory{Calls: policy.Calls{Allowed: 3, Denied: 2, InFlight: 2}, Tools: 2, Operations: 1,
			MaxDataClass: "confidential", MaxDataClassLevel: 2,
			// At 65s: the calls at 10s and after are in the last minute.
			LastMinute: policy.Window{Calls: 4, Allowed: 2, Denied: 2},
			LastHour:   policy.Window{Calls: 5, Allowed: 3, Denied: 2}},
		Tool:      policy.Calls{},
		Operation: policy.Calls{},
		Agent: policy.AgentHistory{LastMinute: policy.Window{Calls: 4, Allowed: 2, Denied: 2},
			LastHour: policy.Window{Calls: 5, Allowed: 3, Denied: 2}},
		Resources: policy.Reach{Reached: 2, Destinations: 1},
		Approvals: policy.Approvals{Pending: 1},
	}
	if diff := cmp.Diff(want, *recordedHistory(t, e)); diff != "" {
		t.Errorf("history of the send (-want +got):\n%s", diff)
	}
	// The send was held for a step-up (the data-flow rule). Reading with
	// the same tool: its own counts, then the destination reached.
	mailRead := api.Authorize{Tool: "mail.send", Operation: "read", Resource: "mail://finance", DataClass: "internal"}
	if a := do(mailRead); !a.Allow {
		t.Fatalf("reading mail: %+v", a)
	}
	h := recordedHistory(t, e)
	if h.Tool != (policy.Calls{Denied: 1}) || h.Operation != (policy.Calls{Allowed: 3, Denied: 2, InFlight: 2}) ||
		h.Resources.ResourceReached || h.Resources.DestinationReached || h.Approvals.Pending != 2 {
		t.Errorf("reading mail saw tool %+v operation %+v resources %+v approvals %+v", h.Tool, h.Operation, h.Resources, h.Approvals)
	}
	do(mailRead)
	h = recordedHistory(t, e)
	if h.Tool != (policy.Calls{Allowed: 1, Denied: 1, InFlight: 1}) || !h.Resources.ResourceReached ||
		!h.Resources.DestinationReached || h.Resources.Destinations != 2 || h.Resources.Reached != 3 {
		t.Errorf("reading mail again saw tool %+v resources %+v", h.Tool, h.Resources)
	}

	// Another task of the same agent sees the agent's calls, not the task's.
	other := e.openTask(alice, scope("internal", "dev"), nil)
	ocred := e.credential(other.TaskID)
	if _, err := e.svc.Authorize(ctx, ocred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), task.Request{}); err != nil {
		t.Fatal(err)
	}
	h = recordedHistory(t, e)
	if h.Task.Allowed != 0 || h.Agent.LastMinute.Calls != 7 || h.Agent.LastHour.Calls != 8 {
		t.Errorf("another task of the agent saw task %+v agent %+v", h.Task, h.Agent)
	}
	// Ten minutes later the minute is empty, the hour is not; an hour
	// later both are, the counts are not.
	e.clk.Add(10 * time.Minute)
	cred = e.credential(opened.TaskID)
	do(pub)
	if h = recordedHistory(t, e); h.Task.LastMinute.Calls != 0 || h.Task.LastHour.Calls != 8 {
		t.Errorf("ten minutes later: task %+v", h.Task)
	}
	e.clk.Add(time.Hour)
	cred = e.credential(opened.TaskID)
	do(pub)
	h = recordedHistory(t, e)
	if h.Task.LastHour.Calls != 0 || h.Agent.LastHour.Calls != 0 || h.Task.Allowed != 6 {
		t.Errorf("an hour later: task %+v agent %+v", h.Task, h.Agent)
	}
}

// TestHistoryReplays: the history each call was decided on is what a
// replay of the ledger up to its record gives, so it is the ledger's, not
// the replica's memory or the clock at replay; and a restart keeps it.
func TestHistoryReplays(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	parent := e.openTask(alice, scope("confidential", "dev"), nil)
	pcred := e.credential(parent.TaskID)
	child := e.openTask(alice, scope("internal", "dev"), &parent.TaskID)
	ccred := e.credential(child.TaskID)
	calls := []struct {
		cred task.VerifiedCredential
		c    api.Authorize
		wait time.Duration
	}{
		{pcred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1", DataClass: "confidential"}, 0},
		{ccred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), 20 * time.Second},
		{ccred, call("shell.exec", "erp://invoices/2026-Q3/1", `{}`), 50 * time.Second},
		{pcred, call("invoices.read", "erp://invoices/2026-Q3/2", `{}`), 2 * time.Minute},
		{ccred, call("invoices.read", "erp://invoices/2026-Q2/2", `{}`), time.Second},
	}
	for _, c := range calls {
		e.clk.Add(c.wait)
		if _, err := e.svc.Authorize(ctx, c.cred, c.c, task.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authorize(ctx, ccred, call("invoices.read", "erp://invoices/2026-Q3/9", `{}`), task.Request{}); err != nil {
		t.Fatal(err)
	}

	st := task.NewState()
	size, _ := e.store.Size(ctx)
	checked := 0
	for i := range size {
		entry := leafAt(t, e, i)
		if entry.Event.Type == ledger.TypeActionAuthorized || entry.Event.Type == ledger.TypeActionDenied {
			b, err := e.store.ReadBody(ctx, ledger.BodyRef{Index: i, Name: "input"})
			if err != nil {
				t.Fatal(err)
			}
			in, err := policy.ParseInput(b.Data)
			if err != nil {
				t.Fatal(err)
			}
			var d event.ActionDecided
			json.Unmarshal(entry.Event.Data, &d)
			got, ok := st.HistoryOf(entry.Event.TaskID, d.Tool, d.Operation, d.Resource, in.Request.Time)
			if !ok {
				t.Fatalf("event %d: unknown task", i)
			}
			if diff := cmp.Diff(in.History, got); diff != "" {
				t.Errorf("event %d: replayed history differs from the recorded (-recorded +replayed):\n%s", i, diff)
			}
			checked++
		}
		if k := st.Replay(entry); k != nil {
			t.Fatalf("replay skipped %v", k)
		}
	}
	if checked != len(calls)+1 {
		t.Fatalf("checked %d decisions, want %d", checked, len(calls)+1)
	}
	// The child sees the confidential data its parent was allowed.
	if h, _ := st.HistoryOf(child.TaskID, "mail.send", "send", "mail://x", e.clk.Now()); h.Task.MaxDataClassLevel != 2 || h.Task.Allowed != 2 {
		t.Errorf("child history %+v", h.Task)
	}
}

// TestHistoryOfAnEndedTask: a task that ends with a call in flight keeps
// the counters its late result updates, but not its window of recent
// calls, which no decision of an ended task reads; a restart from the
// snapshot and a full replay agree with the live state.
func TestHistoryOfAnEndedTask(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "dev")
	opened := e.openTask(alice, scope("internal", "dev"), nil)
	cred := e.credential(opened.TaskID)
	a, err := e.svc.Authorize(ctx, cred, call("invoices.read", "erp://invoices/2026-Q3/1", `{}`), task.Request{})
	if err != nil || !a.Allow {
		t.Fatalf("authorize: %+v, %v", a, err)
	}
	if h, w := task.HistoryHeld(e.svc, opened.TaskID); !h || !w {
		t.Fatalf("active task: history %v, window %v; want both", h, w)
	}
	if _, err := e.svc.Complete(ctx, alice, opened.TaskID); err != nil {
		t.Fatal(err)
	}
	if h, w := task.HistoryHeld(e.svc, opened.TaskID); !h || w {
		t.Fatalf("ended task with a call in flight: history %v, window %v; want the history alone", h, w)
	}
	live := task.StateBytes(e.svc, e.clk.Now())
	for _, cfg := range []task.Config{{}, {SnapshotInterval: -1}} {
		if err := e.reopen(cfg); err != nil {
			t.Fatal(err)
		}
		if h, w := task.HistoryHeld(e.svc, opened.TaskID); !h || w {
			t.Errorf("after a restart (%+v): history %v, window %v; want the history alone", cfg, h, w)
		}
		if !bytes.Equal(task.StateBytes(e.svc, e.clk.Now()), live) {
			t.Errorf("after a restart (%+v): the state differs from the live one", cfg)
		}
	}
	if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
}
