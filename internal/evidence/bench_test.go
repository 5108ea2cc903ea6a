package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/evidence"
	"github.com/writhq/writ/internal/task"
)

// bigTask runs a task of about n events: its lifecycle, then n/2 allowed
// calls with their results, made by 16 concurrent callers.
func bigTask(b *testing.B, e *env, n int) string {
	b.Helper()
	ctx := context.Background()
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: "bulk", Scope: scope("internal", "dev"), TTL: "15m"})
	if err != nil || out.State != api.StateActive {
		b.Fatalf("open: %+v %v", out, err)
	}
	cred := e.credential(out.TaskID)
	var wg sync.WaitGroup
	calls := n / 2
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += 16 {
				a, err := e.svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read",
					Resource: "erp://invoices/2026-Q3/17", Arguments: json.RawMessage(`{"id":` + jsonInt(i) + `}`), DataClass: "internal"},
					task.Request{Gateway: "api"})
				if err != nil || !a.Allow {
					b.Errorf("authorize: %+v %v", a, err)
					return
				}
				if _, err := e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok", Output: json.RawMessage(`{"rows":12}`)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
		b.Fatal(err)
	}
	return out.TaskID
}

// BenchmarkExport10k exports a task of 10,000 events.
func BenchmarkExport10k(b *testing.B) {
	e := newEnv(b, "dev")
	id := bigTask(b, e, 10000)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := evidence.Export(context.Background(), e.source(), id, evidence.Options{}, &buf); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bundle-bytes")
}

// BenchmarkVerify10k verifies the bundle of a task of 10,000 events.
func BenchmarkVerify10k(b *testing.B) {
	e := newEnv(b, "dev")
	id := bigTask(b, e, 10000)
	var buf bytes.Buffer
	if err := evidence.Export(context.Background(), e.source(), id, evidence.Options{}, &buf); err != nil {
		b.Fatal(err)
	}
	bundle := buf.Bytes()
	var events int
	for b.Loop() {
		r, err := evidence.Verify(bytes.NewReader(bundle), int64(len(bundle)), evidence.VerifyOptions{Key: e.vkey})
		if err != nil || !r.OK() {
			b.Fatalf("verify: %+v %v", r, err)
		}
		events = r.Events
	}
	b.ReportMetric(float64(events), "events")
}
