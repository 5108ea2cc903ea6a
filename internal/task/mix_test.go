package task_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/task"
)

// mix drives n random steps through e's service: tasks opened (some with
// limits, some delegated, some needing approvals), approved or denied,
// calls allowed, denied and sent to step-up, results reported, tasks
// completed, revoked, held, released and left to expire. Refusals are
// part of the mix; the ledger records what happened.
func mix(t *testing.T, e *env, n int, seed uint64) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 1))
	type live struct {
		id      string
		cred    task.VerifiedCredential
		actions []string
	}
	var tasks []*live
	var held []string
	for i := 0; i < n; i++ {
		e.clk.Add(time.Duration(rnd.IntN(3)) * time.Second)
		switch k := rnd.IntN(20); {
		case k < 3 || len(tasks) == 0:
			s := scope([]string{"internal", "internal", "confidential", "restricted"}[rnd.IntN(4)], "prod")
			if rnd.IntN(3) == 0 {
				s.Limits = &api.Limits{Calls: n64(int64(2 + rnd.IntN(6))), PerTool: map[string]int64{"mail.send": 2, "invoices.*": 4}}
			}
			var parent *string
			if len(tasks) > 0 && rnd.IntN(3) == 0 {
				p := tasks[rnd.IntN(len(tasks))].id
				parent = &p
				s = scope("internal", "prod")
			}
			out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: fmt.Sprintf("intent %d", i), Scope: s, TTL: "15m", Parent: parent})
			if err != nil {
				continue
			}
			if out.State == string(task.StatePendingApproval) {
				d := "approve"
				if rnd.IntN(4) == 0 {
					d = "deny"
				}
				e.svc.DecideTask(ctx, bob, out.TaskID, api.Decide{Decision: d})
				e.svc.DecideTask(ctx, carol, out.TaskID, api.Decide{Decision: "approve"})
			}
			if v, err := e.svc.Get(out.TaskID); err == nil && v.State == task.StateActive {
				tasks = append(tasks, &live{id: out.TaskID, cred: e.credential(out.TaskID)})
			}
		case k < 12:
			l := tasks[rnd.IntN(len(tasks))]
			tool := []string{"invoices.read", "mail.send", "payments.send"}[rnd.IntN(3)]
			res := fmt.Sprintf("erp://invoices/2026-Q3/%d", rnd.IntN(8))
			if rnd.IntN(6) == 0 {
				res = "erp://other/1" // outside the scope: a step-up
			}
			a, err := e.svc.Authorize(ctx, l.cred, call(tool, res, fmt.Sprintf(`{"n":%d}`, rnd.IntN(3))), task.Request{})
			switch {
			case err != nil:
			case a.Allow:
				l.actions = append(l.actions, a.ActionID)
			case a.ApprovalRequired && rnd.IntN(2) == 0:
				e.svc.DecideApproval(ctx, bob, a.ApprovalID, api.Decide{Decision: "approve"})
			}
		case k < 16:
			l := tasks[rnd.IntN(len(tasks))]
			// The credential layer refuses an expired token first.
			if len(l.actions) > 0 && e.clk.Now().Before(l.cred.Expiry) {
				status := []string{"ok", "error"}[rnd.IntN(2)]
				e.svc.RecordResult(ctx, l.cred, l.actions[0], api.ActionResult{Status: status, Output: []byte(`[1]`)})
				l.actions = l.actions[1:]
			}
		case k == 16:
			i := rnd.IntN(len(tasks))
			e.svc.Complete(ctx, alice, tasks[i].id)
			tasks = append(tasks[:i], tasks[i+1:]...)
		case k == 17:
			i := rnd.IntN(len(tasks))
			e.svc.Revoke(ctx, alice, tasks[i].id, "enough")
			tasks = append(tasks[:i], tasks[i+1:]...)
		case k == 18:
			id := tasks[rnd.IntN(len(tasks))].id
			if _, err := e.svc.Hold(ctx, auditor, id, "litigation"); err == nil {
				held = append(held, id)
			} else if len(held) > 0 {
				e.svc.Release(ctx, auditor, held[0], "settled")
				held = held[1:]
			}
		default:
			e.clk.Add(time.Duration(rnd.IntN(4)) * time.Minute)
			if rnd.IntN(4) == 0 {
				e.clk.Add(16 * time.Minute) // past the tasks' expiry
			}
			e.svc.Sweep(ctx)
		}
	}
}
