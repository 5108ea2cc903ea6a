package task_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// BenchmarkDecisionWithHistory measures what a call's decision costs with
// its history: the lookup in the task state (counters read, windows
// summed) and Evaluate with the default pack, per engine, for a task that
// has made 500 calls of 5 tools. p50 and p99 come from the per-iteration
// durations.
func BenchmarkDecisionWithHistory(b *testing.B) {
	for _, engine := range []string{policy.EngineRego, policy.EngineCedar} {
		b.Run(engine, func(b *testing.B) {
			// A loaded machine can take longer than the default 50ms now and
			// then, which would deny: this measures time, not failing closed.
			pol, err := policy.New(context.Background(), policy.Config{Engine: engine, Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			e := newEnvPolicy(b, "dev", pol)
			out := e.openTask(alice, scope("internal", "dev"), nil)
			cred := e.credential(out.TaskID)
			for i := range 500 {
				c := call(fmt.Sprintf("invoices.t%d", i%5), fmt.Sprintf("erp://invoices/2026-Q3/%d", i%50), `{}`)
				if _, err := e.svc.Authorize(context.Background(), cred, c, task.Request{}); err != nil {
					b.Fatal(err)
				}
				if i%10 == 0 {
					e.clk.Add(time.Second)
				}
			}
			got, _ := e.svc.Get(out.TaskID)
			in := &policy.Input{
				Principal: policy.Principal{ID: got.Requester}, Agent: policy.Agent{ID: got.Agent},
				Task:    policy.Task{ID: got.ID, Scope: policy.Scope(got.Scope), State: string(got.State)},
				Action:  &policy.Action{Tool: "invoices.t1", Operation: "read", Resource: "erp://invoices/2026-Q3/7", DataClass: "internal"},
				Request: policy.Request{Time: e.clk.Now(), Environment: "dev"},
			}
			ctx := context.Background()
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				h, _ := e.svc.History(got.ID, in.Action.Tool, in.Action.Operation, in.Action.Resource)
				in.History = h
				if d := pol.Evaluate(ctx, policy.PointAction, in); d.Effect != policy.Allow {
					b.Fatalf("decision %+v", d)
				}
				durs = append(durs, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}
