package task_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// TestMemoryManyActions drives WRIT_BENCH_ACTIONS actions through one live
// task of a Service on a real SQLite ledger, from 64 callers, and reports
// the heap in use (after a collection) and the process's resident set
// before and after: what the state keeps per action. With
// WRIT_BENCH_RESULTS=0 no result is reported, so every action stays in
// flight; WRIT_BENCH_HEAPPROFILE names a file for a heap profile taken at
// the end. It measures; it asserts nothing about memory, and it is skipped
// unless WRIT_BENCH_ACTIONS is set:
//
//	WRIT_BENCH_ACTIONS=1000000 go test ./internal/task -run TestMemoryManyActions -v -timeout 2h
func TestMemoryManyActions(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WRIT_BENCH_ACTIONS"))
	if n <= 0 {
		t.Skip("set WRIT_BENCH_ACTIONS to the number of actions")
	}
	results := os.Getenv("WRIT_BENCH_RESULTS") != "0"
	ctx := context.Background()
	pol, err := policy.New(ctx, policy.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvPolicy(t, "dev", pol)
	s := scope("internal", "dev")
	out := e.openTask(alice, s, nil)
	// One credential for the whole run; the task and it outlive it.
	jti := "jti-memory"
	exp := e.clk.Now().Add(time.Hour)
	if err := e.svc.RecordCredential(ctx, task.Credential{JTI: jti, TaskID: out.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_x", "sha256:x"); err != nil {
		t.Fatal(err)
	}
	cred := task.VerifiedCredential{JTI: jti, TaskID: out.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	before := memNow()
	t.Logf("before: %s", before)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				c := call(fmt.Sprintf("invoices.t%d", i%5), fmt.Sprintf("erp://invoices/2026-Q3/%d", i%50), `{}`)
				a, err := e.svc.Authorize(ctx, cred, c, task.Request{Gateway: policy.GatewayAPI})
				if err == nil && !a.Allow {
					err = fmt.Errorf("denied: %v", a.Reasons)
				}
				if err == nil && results {
					_, err = e.svc.RecordResult(ctx, cred, a.ActionID, api.ActionResult{Status: "ok"})
				}
				if err != nil {
					errs <- err
					return
				}
				if i%100_000 == 0 {
					t.Logf("%d actions, %s", i, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	after := memNow()
	past, _ := task.CallsPastWindow(e.svc, "")
	t.Logf("after %d actions (results: %v) in %s: %s; in flight %d in memory, %d past the window", n, results,
		elapsed.Round(time.Second), after, task.ActionsHeld(e.svc), past)
	if path := os.Getenv("WRIT_BENCH_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("heap in use grew by %.1f MiB, %.0f bytes per action", float64(after.heap-before.heap)/(1<<20), float64(after.heap-before.heap)/float64(n))
}

// memStat is the heap in use, the resident set, and the largest resident
// set the process has had.
type memStat struct{ heap, rss, peak uint64 }

func (m memStat) String() string {
	return fmt.Sprintf("heap in use %.1f MiB, RSS %.1f MiB (the process's peak %.1f MiB)",
		float64(m.heap)/(1<<20), float64(m.rss)/(1<<20), float64(m.peak)/(1<<20))
}

// memNow collects garbage, returns memory to the system, and reads the
// heap in use and the resident set (Linux: /proc/self/status).
func memNow() memStat {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memStat{heap: ms.HeapInuse}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			for _, f := range []struct {
				name string
				to   *uint64
			}{{"VmRSS:", &m.rss}, {"VmHWM:", &m.peak}} {
				if v, ok := strings.CutPrefix(line, f.name); ok {
					kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					*f.to = kb << 10
				}
			}
		}
	}
	return m
}
