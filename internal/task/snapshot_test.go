package task_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// entries reads every event of e's ledger, with the bodies the state
// keeps.
func (e *env) entries() []ledger.Entry {
	e.t.Helper()
	ctx := context.Background()
	var out []ledger.Entry
	for i, leaf := range e.leafList() {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := ledger.ReadBodies(ctx, e.store, &ent, "intent", "arguments"); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ent)
	}
	return out
}

func replay(st *task.State, ents []ledger.Entry) *task.State {
	for _, ent := range ents {
		st.Replay(ent)
	}
	return st
}

// answers is what a state answers: the projection rows, and policy's
// history and the legal hold of every task.
func answers(st *task.State, ids []string, now time.Time) map[string]any {
	out := map[string]any{"rows": task.ProjectionRows(st)}
	skipped, n := st.Skipped()
	out["skipped"] = []any{skipped, n}
	for _, id := range ids {
		h, _ := st.HistoryOf(id, "invoices.read", "read", "erp://invoices/2026-Q3/1", now)
		hold, on, _ := st.HoldOn(id)
		out[id] = []any{h, hold, on}
	}
	return out
}

// TestSnapshotThenReplayIsReplay: for real event sequences, the state a
// snapshot at k decodes to, with the events after k replayed, encodes to
// the bytes of a replay of the whole ledger, and answers the same.
func TestSnapshotThenReplayIsReplay(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, e *env)
		// window, when set, is a flight window small enough for calls
		// to leave the table (spill.go).
		window uint64
	}{
		{"busy", func(t *testing.T, e *env) { busy(t, e) }, 0},
		{"mix", func(t *testing.T, e *env) { mix(t, e, 800, 7) }, 0},
		{"wide", func(t *testing.T, e *env) { wide(t, e, 120) }, 0},
		{"mix past the window", func(t *testing.T, e *env) { mix(t, e, 800, 7) }, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "prod")
			if tc.window > 0 {
				defer task.SetFlightWindow(tc.window)()
				if err := e.reopen(task.Config{FindAction: indexFinder(e)}); err != nil {
					t.Fatal(err)
				}
			}
			tc.run(t, e)
			ents := e.entries()
			var ids []string
			for _, ent := range ents {
				if ent.Event.Type == ledger.TypeTaskRequested {
					ids = append(ids, ent.Event.TaskID)
				}
			}
			now := e.clk.Now()
			last := uint64(len(ents) - 1)
			full := replay(task.NewState(), ents)
			// Both forget what a sweep now would before they answer.
			want := task.EncodeSnapshot(full, last, now)
			wantAnswers := answers(full, ids, now)
			step := max(1, len(ents)/60)
			past := 0
			for k := 0; k < len(ents); k += step {
				// Taken at the time of event k, as a server would.
				b := task.EncodeSnapshot(replay(task.NewState(), ents[:k+1]), uint64(k), ents[k].Event.Time)
				st, err := task.DecodeSnapshot(b)
				if err != nil {
					t.Fatalf("k=%d: %v", k, err)
				}
				past = max(past, task.AllPastWindow(st))
				if again := task.EncodeSnapshot(st, uint64(k), ents[k].Event.Time); !bytes.Equal(again, b) {
					t.Fatalf("k=%d: decoding and encoding again changes the snapshot", k)
				}
				replay(st, ents[k+1:])
				got := task.EncodeSnapshot(st, last, now)
				if diff := cmp.Diff(wantAnswers, answers(st, ids, now)); diff != "" {
					t.Fatalf("k=%d: answers differ (-replay +snapshot):\n%s", k, diff)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("k=%d of %d: the state after the snapshot encodes differently from a full replay", k, len(ents))
				}
			}
			if tc.window > 0 && (past == 0 || completedPastWindow(ents, tc.window) == 0) {
				t.Errorf("%d calls past the window at most in a snapshot, %d completed past it; want some of each",
					past, completedPastWindow(ents, tc.window))
			}
		})
	}
}

// completedPastWindow counts the completions in ents of calls the window
// had passed.
func completedPastWindow(ents []ledger.Entry, window uint64) int {
	authorized := map[string]uint64{}
	var top uint64
	n := 0
	for _, ent := range ents {
		switch d, _ := event.Read(ent.Event); d := d.(type) {
		case event.ActionDecided:
			if ent.Event.Type == ledger.TypeActionAuthorized {
				authorized[d.ActionID], top = ent.Index, max(top, ent.Index)
			}
		case event.ActionCompleted:
			if i, ok := authorized[d.ActionID]; ok && top >= window && i <= top-window {
				n++
			}
		}
	}
	return n
}

// TestRestartFromSnapshot: a start loads the snapshot written at Close and
// ends up with the state a full replay gives, bodies included; a snapshot
// that does not check is not loaded, and the start replays instead.
func TestRestartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	mix(t, e, 300, 3)
	buf := &testkit.Buffer{}
	logTo := func(b *testkit.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }
	if err := e.reopen(task.Config{Logger: logTo(buf)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "task state loaded from its snapshot") {
		t.Fatalf("the restart did not load the snapshot:\n%s", buf.String())
	}
	mix(t, e, 100, 4) // events after the snapshot, replayed at the next start
	var ids []string
	for _, ent := range e.entries() {
		if ent.Event.Type == ledger.TypeTaskRequested {
			ids = append(ids, ent.Event.TaskID)
		}
	}
	// From scratch, writing no snapshot.
	if err := e.reopen(task.Config{SnapshotInterval: -1}); err != nil {
		t.Fatal(err)
	}
	wantViews, want := snapshot(t, e, ids), task.StateBytes(e.svc, e.clk.Now())
	check := func(t *testing.T) {
		t.Helper()
		if diff := cmp.Diff(wantViews, snapshot(t, e, ids)); diff != "" {
			t.Errorf("views differ from a full replay's (-replay +now):\n%s", diff)
		}
		if !bytes.Equal(task.StateBytes(e.svc, e.clk.Now()), want) {
			t.Error("state differs from a full replay's")
		}
	}
	if err := e.reopen(task.Config{}); err != nil { // writes a snapshot at Close
		t.Fatal(err)
	}
	buf = &testkit.Buffer{}
	if err := e.reopen(task.Config{Logger: logTo(buf)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "task state loaded from its snapshot") {
		t.Fatalf("the restart did not load the snapshot:\n%s", buf.String())
	}
	check(t)
	if c, err := task.CheckLedger(ctx, e.store, e.store.DB()); err != nil || len(c.Projections) != 0 {
		t.Errorf("CheckLedger = %v, %v", c.Projections, err)
	}
	// A snapshot whose bodies cannot be read back is not used: the start
	// replays instead and comes to the same state.
	e.failBodyBatches = true
	buf = &testkit.Buffer{}
	err := e.reopen(task.Config{Logger: logTo(buf)})
	e.failBodyBatches = false
	e.store.failBatches.Store(false)
	if err != nil {
		t.Fatal(err)
	}
	if log := buf.String(); !strings.Contains(log, "snapshot is not used") || strings.Contains(log, "loaded from its snapshot") {
		t.Fatalf("a start that could not read the snapshot's bodies:\n%s", log)
	}
	check(t)
	e.close()

	for _, tc := range []struct{ name, sql, want string }{
		{"state changed", `UPDATE task_snapshot_part SET data = CAST(data || x'00' AS BLOB)`, "MAC does not verify"},
		{"ledger moved", `UPDATE task_snapshot SET leaf_hash = x'00'`, "MAC does not verify"},
		{"beyond the ledger", `UPDATE task_snapshot SET through = size + 5, size = size + 6`, "MAC does not verify"},
		{"other version", `UPDATE task_snapshot SET version = 99`, "version 99"},
		{"not a snapshot", `UPDATE task_snapshot_part SET data = x'0102'`, "MAC does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from a good snapshot, which a start with
			// snapshots off leaves alone.
			if err := e.open(task.Config{SnapshotInterval: -1}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.DB().ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			c, err := task.CheckLedger(ctx, e.store, e.store.DB())
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "other version" && len(c.Projections) == 0 {
				t.Errorf("CheckLedger found nothing wrong with the snapshot")
			}
			e.close()
			buf := &testkit.Buffer{}
			if err := e.open(task.Config{Logger: logTo(buf)}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), tc.want) || strings.Contains(buf.String(), "loaded from its snapshot") {
				t.Errorf("start on a bad snapshot; want %q in the log:\n%s", tc.want, buf.String())
			}
			check(t)
			e.close() // writes a good snapshot again
		})
	}
}

// TestCheckLedgerCatchesForgedSnapshot: a snapshot whose MAC is good but
// whose state is not what the ledger implies (written by a writ with a
// bug, or by someone holding the key) fails `writ ledger verify`.
func TestCheckLedgerCatchesForgedSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "prod")
	mix(t, e, 200, 5)
	id := e.openTask(alice, scope("internal", "prod"), nil).TaskID
	if _, err := e.svc.Revoke(ctx, alice, id, "done"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := task.ForgeSnapshot(e.svc, func(st *task.State) { task.SetTaskState(st, id, task.StateActive) }); err != nil {
		t.Fatal(err)
	}
	c, err := task.CheckLedger(ctx, e.store, e.store.DB())
	if err != nil || len(c.Projections) != 1 || !strings.Contains(c.Projections[0], "task_snapshot") {
		t.Errorf("CheckLedger = %q, %v; want the snapshot reported", c.Projections, err)
	}
	// Repairing replays from the first event and replaces the snapshot.
	if err := e.reopen(task.Config{AllowProjectionMismatch: true}); err != nil {
		t.Fatal(err)
	}
	if v, err := e.svc.Get(id); err != nil || v.State != task.StateRevoked {
		t.Errorf("the repaired start has task %s %v, %v", id, v.State, err)
	}
	e.svc.Close() // writes the snapshot
	if c, err := task.CheckLedger(ctx, e.store, e.store.DB()); err != nil || len(c.Projections) != 0 {
		t.Errorf("after repair CheckLedger = %q, %v", c.Projections, err)
	}
}

// FuzzDecodeSnapshot: a corrupt snapshot is an error, never a panic.
func FuzzDecodeSnapshot(f *testing.F) {
	e := newEnv(f, "prod")
	busy(f, e)
	ents := e.entries()
	f.Add(task.EncodeSnapshot(replay(task.NewState(), ents), uint64(len(ents)-1), e.clk.Now()))
	f.Add([]byte("writ-task-state\n\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := task.DecodeSnapshot(b)
		if err != nil {
			return
		}
		// What decodes is a state that can be used.
		task.EncodeSnapshot(st, 0, time.Now())
		for _, r := range task.ProjectionRows(st) {
			_ = r
		}
	})
}

// wide runs a task of n calls, nearly each of a tool and a resource of its
// own: more than a history keeps in sorted order alone (keyedSmall).
func wide(t *testing.T, e *env, n int) {
	ctx := context.Background()
	a := e.openTask(alice, scope("internal", "prod"), nil)
	cred := e.credential(a.TaskID)
	for i := range n {
		tool := fmt.Sprintf("invoices.t%d", (i*37)%(n-10))
		if i%7 == 0 {
			tool = "invoices.read"
		}
		out, err := e.svc.Authorize(ctx, cred, call(tool, fmt.Sprintf("erp://invoices/2026-Q3/%d", (i*53)%n), `{}`), task.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			e.svc.RecordResult(ctx, cred, out.ActionID, api.ActionResult{Status: "ok"})
		}
		if i%10 == 0 {
			e.clk.Add(time.Second)
		}
	}
	if h, _ := e.svc.History(a.TaskID, "invoices.read", "read", "erp://invoices/2026-Q3/1"); h.Task.Tools < 64 || h.Resources.Reached < 64 {
		t.Fatalf("the task counts %d tools and %d resources, want 64 or more of each", h.Task.Tools, h.Resources.Reached)
	}
}
