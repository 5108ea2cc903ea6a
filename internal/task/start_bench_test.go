package task_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/server"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// BenchmarkStart measures how long task.New takes to be ready over a
// ledger of WRIT_BENCH_LEDGER_SIZE events (default 20,000), and the heap
// and resident set after: replaying the whole ledger, and loading the
// snapshot written at the end of it then replaying nothing. The ledger is
// tasks of about twenty events each (opened, decided, activated, a
// credential, seven calls with their results, one call left in flight,
// completed or, one in ten, left active). It reports; it asserts nothing
// about time:
//
//	WRIT_BENCH_LEDGER_SIZE=1000000 go test ./internal/task -run '^$' -bench Start -benchtime 1x -timeout 2h
//
// With WRIT_BENCH_LEDGER_DIR set, the ledger is built in that directory
// and kept, and a later run finds it there and builds nothing (the size
// is then the ledger's): starts can be measured again and again without
// building ten million events each time.
func BenchmarkStart(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("WRIT_BENCH_LEDGER_SIZE")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	var e *env
	var size uint64
	if dir := os.Getenv("WRIT_BENCH_LEDGER_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		e = newEnvIn(b, dir, "dev", nil)
		var err error
		if size, err = e.store.Size(ctx); err != nil {
			b.Fatal(err)
		}
	} else {
		e = newEnv(b, "dev")
	}
	if size == 0 {
		begin := time.Now()
		size = fillTasks(b, e, n)
		b.Logf("ledger of %d events built in %s", size, time.Since(begin).Round(time.Second))
	} else {
		b.Logf("ledger of %d events found in WRIT_BENCH_LEDGER_DIR", size)
	}
	e.svc.Close()
	e.svc = nil
	logs := &testkit.Buffer{}
	open := func(b *testing.B, interval int) *task.Service {
		cfg := task.Config{Ledger: e.led, Eraser: e.led, Store: e.store, Policy: e.pol, DB: e.store.DB(), Environment: e.env,
			Now: e.clk.Now, SweepInterval: -1, DigestKey: e.kp.DigestKey(), SnapshotInterval: interval,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
		// The collector as writ server tunes it while it starts.
		gc := server.TuneGCForStart()
		defer gc.Restore()
		start, cpu := time.Now(), testkit.ProcessCPU(b)
		svc, err := task.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ready, used := time.Since(start), testkit.ProcessCPU(b)-cpu
		m := memNow()
		b.ReportMetric(ready.Seconds(), "s-ready")
		// The process's CPU meanwhile, the collector's included: steadier
		// than the time to ready on a shared machine.
		b.ReportMetric(used.Seconds(), "s-cpu")
		b.ReportMetric(float64(m.heap)/(1<<20), "MiB-heap")
		b.ReportMetric(float64(m.rss)/(1<<20), "MiB-rss")
		_, skipped := svc.SkippedEvents()
		b.Logf("ready in %s (%s of CPU); %s; %d actions in flight, %d events skipped", ready.Round(time.Millisecond), used.Round(time.Millisecond), m, task.ActionsHeld(svc), skipped)
		return svc
	}
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			svc := open(b, -1)
			svc.Close()
		}
	})
	svc := open(b, 0)
	if err := svc.WriteSnapshot(ctx); err != nil {
		b.Fatal(err)
	}
	svc.Close()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "snapshot written") {
			b.Log(line)
		}
	}
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			svc := open(b, 0)
			svc.Close()
		}
	})
	// Another snapshot while decisions run, built from the one stored:
	// how long the lock is held, and the longest a decision took.
	b.Run("again", func(b *testing.B) {
		for b.Loop() {
			svc := open(b, 0)
			var took time.Duration
			longest := decideDuring(b, svc, e.clk.Now(), func() {
				start := time.Now()
				if err := svc.WriteSnapshot(ctx); err != nil {
					b.Error(err)
				}
				took = time.Since(start)
			})
			// The same, as long, without a snapshot: what the machine
			// gives a decision anyway.
			idle := decideDuring(b, svc, e.clk.Now(), func() { time.Sleep(took) })
			b.ReportMetric(float64(longest.Microseconds())/1000, "ms-longest-decision")
			b.ReportMetric(float64(idle.Microseconds())/1000, "ms-longest-without")
			svc.Close()
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "snapshot written") {
				b.Log(line)
			}
		}
	})
}

// decideDuring authorizes calls of the first task fillTasks left active,
// and records their results, over and over while fn runs (and a few times
// before), and returns the longest an authorization took meanwhile.
func decideDuring(b *testing.B, svc *task.Service, now time.Time, fn func()) time.Duration {
	b.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("tsk_bench%08d", 0)
	cred := task.VerifiedCredential{JTI: "jti-" + id, TaskID: id, Agent: agent, Subject: alice.ID, Expiry: now.Add(24 * time.Hour), Binding: "none"}
	// decide reports a failure with b.Error, as it also runs beside the
	// benchmark's goroutine.
	decide := func() (time.Duration, bool) {
		start := time.Now()
		ok, err := svc.Authorize(ctx, cred, api.Authorize{Tool: "invoices.read", Operation: "read", Resource: "erp://invoices/2026-Q3/1"}, task.Request{})
		took := time.Since(start)
		if err == nil && !ok.Allow {
			err = fmt.Errorf("call not allowed: %v", ok.Reasons)
		}
		if err == nil {
			_, err = svc.RecordResult(ctx, cred, ok.ActionID, api.ActionResult{Status: "ok"})
		}
		if err != nil {
			b.Error(err)
			return took, false
		}
		return took, true
	}
	for range 50 {
		if _, ok := decide(); !ok {
			return 0
		}
	}
	stop := make(chan struct{})
	longest := make(chan time.Duration)
	go func() {
		var l time.Duration
		for {
			select {
			case <-stop:
				longest <- l
				return
			default:
			}
			took, ok := decide()
			l = max(l, took)
			if !ok {
				<-stop
				longest <- l
				return
			}
		}
	}()
	fn()
	close(stop)
	return <-longest
}

// fillTasks appends at least n events of coherent tasks to e's ledger, in
// large transactions, and returns the ledger's size.
func fillTasks(b *testing.B, e *env, n int) uint64 {
	b.Helper()
	ctx := context.Background()
	s := task.Scope(scope("internal", "dev"))
	at := e.clk.Now()
	until := at.Add(24 * time.Hour)
	var events []ledger.Event
	flush := func(force bool) {
		if len(events) >= 4096 || (force && len(events) > 0) {
			if _, err := e.led.AppendAll(ctx, events); err != nil {
				b.Fatal(err)
			}
			events = events[:0]
		}
	}
	var written int
	for i := 0; written < n; i++ {
		id := fmt.Sprintf("tsk_bench%08d", i)
		jti := "jti-" + id
		ev := func(typ string, data any) ledger.Event {
			return ledger.Event{Type: typ, Time: at, TaskID: id, Principal: alice.ID, Agent: agent, Data: benchJSON(b, data)}
		}
		req := ev(ledger.TypeTaskRequested, event.TaskRequested{Scope: api.Scope(s), ScopeHash: s.Hash(), TTL: "24h", Environment: "dev"})
		req.Bodies = map[string][]byte{"intent": []byte("Summarize invoices, batch " + strconv.Itoa(i))}
		dec := ev(ledger.TypePolicyDecided, event.PolicyDecided{Point: "task", Engine: "rego", Outcome: event.Outcome{Effect: "allow"}})
		dec.DecisionID, dec.PolicyVersion = "dec_"+id, "sha256:bench"
		cred := ev(ledger.TypeCredentialIssued, event.CredentialIssued{Subject: alice.ID, ExpiresAt: until, Binding: "none"})
		cred.JTI = jti
		events = append(events, req, dec, ev(ledger.TypeTaskActivated, event.TaskActivated{TTL: "24h", ExpiresAt: until}), cred)
		for k := range 8 {
			aid := fmt.Sprintf("act_%s_%d", id, k)
			auth := ev(ledger.TypeActionAuthorized, event.ActionDecided{ActionID: aid, Tool: "invoices.read", Operation: "read",
				Resource: fmt.Sprintf("erp://invoices/2026-Q3/%d", k), DataClass: "internal", Effect: "allow"})
			auth.JTI, auth.DecisionID, auth.PolicyVersion = jti, fmt.Sprintf("dec_%s_%d", id, k), "sha256:bench"
			events = append(events, auth)
			if k < 7 {
				done := ev(ledger.TypeActionCompleted, event.ActionCompleted{ActionID: aid, Status: "ok"})
				done.JTI = jti
				events = append(events, done)
			}
		}
		if i%10 != 0 {
			end := ev(ledger.TypeTaskCompleted, event.TaskEnded{Reason: "done", By: alice.ID})
			rev := ev(ledger.TypeCredentialRevoked, event.CredentialRevoked{Reason: "task_completed"})
			rev.JTI = jti
			events = append(events, end, rev)
		}
		written = i*20 + 20
		flush(false)
	}
	flush(true)
	size, err := e.store.Size(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return size
}

func benchJSON(b *testing.B, v any) json.RawMessage {
	out, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
