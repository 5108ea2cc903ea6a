package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// TestReplaySkipsEventsItCannotApply: events in the ledger that do not
// follow from the ones before it (appended around writ, straight through
// the ledger) are skipped at start, logged naming their index, counted by
// SkippedEvents and CheckLedger, and change nothing; the service starts
// and serves.
func TestReplaySkipsEventsItCannotApply(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	ids := busy(t, e)
	before := snapshot(t, e, ids)
	first, err := e.led.AppendAll(ctx, []ledger.Event{
		{Type: ledger.TypeTaskCompleted, TaskID: "tsk_never", Principal: alice.ID, Data: json.RawMessage(`{"reason":"forged"}`)},
		{Type: ledger.TypeCredentialRevoked, TaskID: ids[0], JTI: "jti_never"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	if err := e.reopen(task.Config{Logger: logger}); err != nil {
		t.Fatalf("start on a ledger with events it cannot apply: %v", err)
	}
	got, n := e.svc.SkippedEvents()
	if n != 2 || len(got) != 2 || got[0].Index != first || got[1].Index != first+1 || got[0].Type != ledger.TypeTaskCompleted || got[0].Reason == "" {
		t.Fatalf("SkippedEvents = %+v, %d", got, n)
	}
	for _, k := range got {
		if !strings.Contains(logs.String(), `"level":"ERROR","msg":"ledger event skipped`) || !strings.Contains(logs.String(), `"index":`+jsonNumber(k.Index)) {
			t.Errorf("no error log line names skipped event %d:\n%s", k.Index, logs.String())
		}
	}
	// Skipped, not applied: the state is what it was, but for the event
	// noted among the task's events.
	after := snapshot(t, e, ids)
	tk, _ := e.svc.Get(ids[0])
	if tk.Events[len(tk.Events)-1] != first+1 {
		t.Errorf("the skipped event of task %s is not among its events: %v", ids[0], tk.Events)
	}
	if _, err := e.svc.Get("tsk_never"); err == nil {
		t.Error("a task.completed of a task never requested made a task")
	}
	if len(snapshotDiff(before, after)) != 1 {
		t.Errorf("state after the skip differs in %v, want only task %s's event list", snapshotDiff(before, after), ids[0])
	}
	// And it serves.
	e.openTask(alice, scope("internal", "prod"), nil)

	c, err := task.CheckLedger(ctx, e.store, e.store.DB())
	if err != nil || c.SkippedCount != 2 || len(c.Projections) != 0 || c.Skipped[0].Index != first {
		t.Errorf("CheckLedger = %+v, %v", c, err)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// snapshotDiff names the keys whose values differ.
func snapshotDiff(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		x, _ := json.Marshal(v)
		y, _ := json.Marshal(b[k])
		if !bytes.Equal(x, y) {
			out = append(out, k)
		}
	}
	return out
}
