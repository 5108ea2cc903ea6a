package task_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// work runs one task's life through e's service: opened, a credential,
// calls with their results, and, for odd n, completed. Failures are
// reported with t.Error, so it may run beside other goroutines.
func work(t *testing.T, e *env, n int) {
	ctx := context.Background()
	out, err := e.svc.Open(ctx, alice, api.OpenTask{Agent: agent, Intent: fmt.Sprintf("work %d", n), Scope: scope("internal", "prod"), TTL: "15m"})
	if err != nil {
		t.Errorf("Open: %v", err)
		return
	}
	jti := fmt.Sprintf("jti-work-%d", n)
	exp := e.clk.Now().Add(5 * time.Minute)
	if err := e.svc.RecordCredential(ctx, task.Credential{JTI: jti, TaskID: out.TaskID, Agent: agent, ExpiresAt: exp, Binding: "none"}, "dec_w", "sha256:w"); err != nil {
		t.Errorf("RecordCredential: %v", err)
		return
	}
	cred := task.VerifiedCredential{JTI: jti, TaskID: out.TaskID, Agent: agent, Subject: alice.ID, Expiry: exp, Binding: "none"}
	for k := range 4 {
		ok, err := e.svc.Authorize(ctx, cred, call("invoices.read", fmt.Sprintf("erp://invoices/2026-Q3/%d", k), `{"k":1}`), task.Request{})
		if err != nil {
			t.Errorf("Authorize: %v", err)
			return
		}
		if k%2 == 0 { // the others stay in flight
			if _, err := e.svc.RecordResult(ctx, cred, ok.ActionID, api.ActionResult{Status: "ok"}); err != nil {
				t.Errorf("RecordResult: %v", err)
			}
		}
	}
	if n%2 == 1 {
		if _, err := e.svc.Complete(ctx, alice, out.TaskID); err != nil {
			t.Errorf("Complete: %v", err)
		}
	}
}

// TestSnapshotWhileCommitting: snapshots taken while commits run, each
// built from the one before and the ledger, hold exactly the state a
// replay of the ledger gives at their index; and once nothing runs, the
// bytes are those the service's own state encodes to.
func TestSnapshotWhileCommitting(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	logs := &testkit.Buffer{}
	if err := e.reopen(task.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}); err != nil {
		t.Fatal(err)
	}
	mix(t, e, 150, 11)
	if err := e.svc.WriteSnapshot(ctx); err != nil { // the first, encoded under the lock
		t.Fatal(err)
	}
	type taken struct {
		through uint64
		swept   time.Time
		state   []byte
	}
	var shots []taken
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 12 {
				work(t, e, g*100+i)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		e.clk.Add(time.Second)
		if err := e.svc.WriteSnapshot(ctx); err != nil {
			t.Fatal(err)
		}
		through, swept, state, err := task.StoredSnapshot(e.svc)
		if err != nil {
			t.Fatal(err)
		}
		if len(shots) == 0 || through != shots[len(shots)-1].through {
			shots = append(shots, taken{through, swept, state})
		}
	}
	if n := strings.Count(logs.String(), "built=\"from the snapshot"); n < 2 || len(shots) < 2 {
		t.Fatalf("%d snapshots built from the one before, %d different ones taken; want 2 or more:\n%s", n, len(shots), logs.String())
	}
	ents := e.entries()
	for _, s := range shots {
		want := task.EncodeSnapshot(replay(task.NewState(), ents[:s.through+1]), s.through, s.swept)
		if !bytes.Equal(s.state, want) {
			t.Errorf("the snapshot through %d of %d is not the state a replay gives there", s.through, len(ents))
		}
		if _, err := task.DecodeSnapshot(s.state); err != nil {
			t.Errorf("the snapshot through %d: %v", s.through, err)
		}
	}
	// Quiet: built apart and encoded from the service's state, the same
	// bytes.
	work(t, e, 999)
	if err := e.svc.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	through, swept, state, err := task.StoredSnapshot(e.svc)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(logs.String()), "\n"); !strings.Contains(lines[len(lines)-1], "built=\"from the snapshot") {
		t.Fatalf("the last snapshot was not built from the one before: %s", lines[len(lines)-1])
	}
	if got := task.EncodeServiceState(e.svc, through, swept); !bytes.Equal(got, state) {
		t.Errorf("the snapshot built through %d differs from the service's state encoded there", through)
	}
	if c, err := task.CheckLedger(ctx, e.store, e.store.DB()); err != nil || len(c.Projections) != 0 {
		t.Errorf("CheckLedger = %q, %v", c.Projections, err)
	}
}
