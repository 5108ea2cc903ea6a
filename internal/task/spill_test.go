package task_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
	"github.com/writhq/writ/internal/testkit"
)

// TestCallsPastTheWindow: a task that leaves more calls in flight than the
// window holds keeps the older ones as a count, not in memory; their late
// results are found through the store and recorded once, with the tool and
// operation the counters need; a restart, from its snapshot or from the
// first event, comes to the same state; and without a finder such a
// result is refused, never recorded blind.
func TestCallsPastTheWindow(t *testing.T) {
	const window = 16
	defer task.SetFlightWindow(window)()
	defer task.SetRecentKept(2)()
	ctx := context.Background()
	e := newEnv(t, "dev")
	finder := indexFinder(e)
	const n = 60
	out, cred, otherCred, ids := e.indexedCalls(n)
	inFlight := func(when string, want int) {
		t.Helper()
		held := task.ActionsHeld(e.svc)
		all, mine := task.CallsPastWindow(e.svc, out.TaskID)
		if held > window || held+mine != want || all != mine {
			t.Errorf("%s: %d calls in the table (at most %d), %d past the window (%d of the task), want %d in all",
				when, held, window, all, mine, want)
		}
		h, ok := e.svc.History(out.TaskID, "invoices.read", "read", "erp://invoices/2026-Q3/17")
		if w := int64(want); !ok || h.Task.Calls.InFlight != w || h.Tool.InFlight != w || h.Operation.InFlight != w {
			t.Errorf("%s: history %+v, tool %+v, operation %+v, want %d in flight", when, h.Task.Calls, h.Tool, h.Operation, want)
		}
	}
	inFlight("after the calls", n)
	if _, mine := task.CallsPastWindow(e.svc, out.TaskID); mine == 0 {
		t.Fatal("no call left the table")
	}

	// The oldest call's result, from the store.
	rec, err := e.svc.RecordResult(ctx, cred, ids[0], api.ActionResult{Status: "ok", Output: []byte(`{"total": 1}`)})
	if err != nil {
		t.Fatalf("the result of a call past the window: %v", err)
	}
	ent := e.entries()[rec.LedgerIndex]
	d, err := event.Read(ent.Event)
	c, _ := d.(event.ActionCompleted)
	if err != nil || c.ActionID != ids[0] || c.Tool != "invoices.read" || c.Operation != "read" || !c.OutputRecorded ||
		ent.Event.DecisionID == "" {
		t.Errorf("the completion recorded: %+v %+v %v", ent.Event, c, err)
	}
	for _, a := range e.entries() {
		if d, _ := event.Read(a.Event); a.Event.Type == ledger.TypeActionAuthorized && d.(event.ActionDecided).ActionID == ids[0] &&
			a.Event.DecisionID != ent.Event.DecisionID {
			t.Errorf("the completion answers decision %s, the call was %s", ent.Event.DecisionID, a.Event.DecisionID)
		}
	}
	inFlight("after one result", n-1)
	refusedAs := func(when string, err error, kind error, want string) {
		t.Helper()
		if !errors.Is(err, kind) || (want != "" && code(err) != want) {
			t.Errorf("%s: %v, want %v %s", when, err, kind, want)
		}
	}
	_, err = e.svc.RecordResult(ctx, cred, ids[0], api.ActionResult{Status: "ok"})
	refusedAs("again at once", err, task.ErrConflict, "already_recorded")
	// Two more completions move the ring of recent ones past it: the store
	// answers.
	for _, id := range ids[1:3] {
		if _, err := e.svc.RecordResult(ctx, cred, id, api.ActionResult{Status: "error"}); err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
	}
	_, err = e.svc.RecordResult(ctx, cred, ids[0], api.ActionResult{Status: "ok"})
	refusedAs("again later", err, task.ErrConflict, "already_recorded")
	_, err = e.svc.RecordResult(ctx, otherCred, ids[3], api.ActionResult{Status: "ok"})
	refusedAs("from another task", err, task.ErrForbidden, "other_task")
	held, err := e.svc.RecordHeldResult(ctx, cred, ids[3], api.ActionResult{Status: "ok"}, task.Request{})
	if err != nil || held.Cancelled != "" {
		t.Errorf("a held result of a call past the window: %+v %v", held, err)
	}
	// The latest call is still in the table.
	if _, err := e.svc.RecordResult(ctx, cred, ids[n-1], api.ActionResult{Status: "ok"}); err != nil {
		t.Errorf("the latest call: %v", err)
	}
	inFlight("after five results", n-5)

	// A restart loads the snapshot written at Close; one without it
	// replays; both come to the state of a replay of the ledger.
	now := e.clk.Now()
	want := task.StateBytes(e.svc, now)
	replayed := task.EncodeSnapshot(replay(task.NewState(), e.entries()), 0, now)
	if !bytes.Equal(want, replayed) {
		t.Error("the live state encodes differently from a replay of its ledger")
	}
	if err := e.reopen(task.Config{FindAction: finder}); err != nil {
		t.Fatal(err)
	}
	if got := task.StateBytes(e.svc, now); !bytes.Equal(got, want) {
		t.Error("the state after a restart differs from the state before it")
	}
	inFlight("after a restart", n-5)
	if _, err := e.svc.RecordResult(ctx, cred, ids[4], api.ActionResult{Status: "ok"}); err != nil {
		t.Errorf("after a restart, the result of a call past the window: %v", err)
	}
	_, err = e.svc.RecordResult(ctx, cred, ids[1], api.ActionResult{Status: "ok"})
	refusedAs("after a restart, a result recorded before it", err, task.ErrConflict, "already_recorded")
	_, err = e.svc.RecordResult(ctx, cred, "act_neverauthorized", api.ActionResult{Status: "ok"})
	refusedAs("an action never authorized", err, task.ErrNotFound, "")

	// Without a finder a call past the window cannot be told from one
	// never made: refused, and nothing recorded.
	if err := e.reopen(task.Config{}); err != nil {
		t.Fatal(err)
	}
	size := len(e.entries())
	_, err = e.svc.RecordResult(ctx, cred, ids[5], api.ActionResult{Status: "ok"})
	refusedAs("without a finder", err, task.ErrNotFound, "")
	if got := len(e.entries()); got != size {
		t.Errorf("a refused result wrote %d events", got-size)
	}
	inFlight("without a finder", n-6)
}

// TestCompletionPastTheWindowAtReplay: replay applies the completion of a
// call past the window from the event alone, counts it, and refuses a
// completion once the task has no call past the window left, or of a call
// completed already.
func TestCompletionPastTheWindowAtReplay(t *testing.T) {
	defer task.SetFlightWindow(4)()
	e := newEnv(t, "dev")
	out, _, _, ids := e.indexedCalls(12)
	ents := e.entries()
	last := ents[len(ents)-1]
	next := uint64(len(ents))
	completion := func(actionID string) ledger.Entry {
		data, err := json.Marshal(event.ActionCompleted{ActionID: actionID, Status: "ok", OutputRecorded: true,
			Tool: "invoices.read", Operation: "read"})
		if err != nil {
			t.Fatal(err)
		}
		next++
		return ledger.Entry{Index: next - 1, Event: ledger.Event{Type: ledger.TypeActionCompleted, Time: last.Event.Time,
			TaskID: out.TaskID, Principal: last.Event.Principal, Agent: last.Event.Agent, JTI: last.Event.JTI, Data: data}}
	}
	st := replay(task.NewState(), ents)
	past := task.PastWindow(st, out.TaskID)
	if past == 0 || past >= len(ids) {
		t.Fatalf("%d of %d calls past the window", past, len(ids))
	}
	inFlight := func() int {
		h, _ := st.HistoryOf(out.TaskID, "invoices.read", "read", "erp://invoices/2026-Q3/17", last.Event.Time)
		return int(h.Tool.InFlight)
	}
	if err := st.Apply(completion(ids[0])); err != nil {
		t.Fatalf("the completion of a call past the window: %v", err)
	}
	if got := inFlight(); got != len(ids)-1 {
		t.Errorf("%d calls of the tool in flight, want %d", got, len(ids)-1)
	}
	if err := st.Apply(completion(ids[0])); !errors.Is(err, task.ErrIncoherent) {
		t.Errorf("the same completion again: %v, want incoherent", err)
	}
	for _, id := range ids[1:past] {
		if err := st.Apply(completion(id)); err != nil {
			t.Fatalf("completion of %s: %v", id, err)
		}
	}
	if n := task.PastWindow(st, out.TaskID); n != 0 {
		t.Fatalf("%d calls still past the window", n)
	}
	if err := st.Apply(completion("act_neverauthorized")); !errors.Is(err, task.ErrIncoherent) {
		t.Errorf("a completion with no call past the window left: %v, want incoherent", err)
	}
	if err := st.Apply(completion(ids[len(ids)-1])); err != nil {
		t.Errorf("the completion of a call in the table: %v", err)
	}
	if got, want := inFlight(), len(ids)-past-1; got != want {
		t.Errorf("%d calls of the tool in flight, want %d", got, want)
	}
}

// TestWindowIgnoresApplyOrder: which calls a state holds in its table and
// which it counts past the window depend on the events applied, not on
// the order concurrent commits applied them in. Random runs of calls and
// results under a small window, applied in ledger order and with
// neighbours swapped (a result never before its call), encode to the same
// snapshot wherever both have applied the same events. (A rule keeping the
// latest N calls in flight fails this at once.)
func TestWindowIgnoresApplyOrder(t *testing.T) {
	defer task.SetFlightWindow(2)() // restores the default, whatever the runs below set
	e := newEnv(t, "dev")
	out := e.openTask(alice, scope("internal", "dev"), nil)
	e.credential(out.TaskID)
	prefix := e.entries()
	last := prefix[len(prefix)-1].Event
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 7))
		window := uint64(2 + r.IntN(12))
		task.SetFlightWindow(window)
		type call struct{ id, tool, op string }
		var flying []call
		var ents []ledger.Entry
		at := uint64(len(prefix))
		add := func(typ string, data any) {
			b, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			ents = append(ents, ledger.Entry{Index: at, Event: ledger.Event{Type: typ, Time: last.Time, TaskID: out.TaskID,
				Principal: last.Principal, Agent: last.Agent, JTI: last.JTI, Data: b}})
			at++
		}
		for range 300 {
			if len(flying) == 0 || r.IntN(3) > 0 {
				var k [16]byte
				for i := range k {
					k[i] = byte(r.Uint32())
				}
				c := call{id: "act_" + enc.EncodeToString(k[:]), tool: []string{"invoices.read", "tracker.issues"}[r.IntN(2)],
					op: []string{"read", "write"}[r.IntN(2)]}
				flying = append(flying, c)
				add(ledger.TypeActionAuthorized, event.ActionDecided{ActionID: c.id, Tool: c.tool, Operation: c.op, Effect: "allow"})
				continue
			}
			i := r.IntN(len(flying))
			c := flying[i]
			flying = append(flying[:i], flying[i+1:]...)
			add(ledger.TypeActionCompleted, event.ActionCompleted{ActionID: c.id, Status: "ok", OutputRecorded: true, Tool: c.tool, Operation: c.op})
		}
		// The order of a lone server's concurrent commits: neighbours
		// swapped, but never a result before the call it completes.
		shuffled := slices.Clone(ents)
		for range 3 * len(shuffled) {
			i := r.IntN(len(shuffled) - 1)
			a, b := shuffled[i], shuffled[i+1]
			if b.Event.Type == ledger.TypeActionCompleted && a.Event.Type == ledger.TypeActionAuthorized &&
				bytes.Contains(b.Event.Data, []byte(`"`+actionOf(t, a)+`"`)) {
				continue
			}
			shuffled[i], shuffled[i+1] = b, a
		}
		// Compared wherever both have applied the same events: where the
		// swapped order's prefix holds the ledger's first k.
		inOrder, swapped := replay(task.NewState(), prefix), replay(task.NewState(), prefix)
		var top uint64
		for k := range ents {
			for _, p := range []struct {
				st  *task.State
				ent ledger.Entry
			}{{inOrder, ents[k]}, {swapped, shuffled[k]}} {
				if err := p.st.Apply(p.ent); err != nil {
					t.Fatalf("seed %d, window %d: %v", seed, window, err)
				}
			}
			top = max(top, shuffled[k].Index)
			if top != ents[k].Index {
				continue
			}
			a, b := task.EncodeSnapshot(inOrder, top, last.Time), task.EncodeSnapshot(swapped, top, last.Time)
			if !bytes.Equal(a, b) {
				t.Fatalf("seed %d, window %d: the state applied out of order through %d encodes differently", seed, window, top)
			}
		}
		if task.AllPastWindow(inOrder) == 0 && len(flying) > int(window) {
			t.Errorf("seed %d, window %d: %d calls in flight, none past the window", seed, window, len(flying))
		}
	}
}

func actionOf(t *testing.T, e ledger.Entry) string {
	t.Helper()
	var d event.ActionDecided
	if err := json.Unmarshal(e.Event.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.ActionID
}

// TestSnapshotOutsideItsWindowIsNotUsed: a stored snapshot whose table
// holds calls outside its own window (one forged, or written under another
// window) does not decode, and the start replays the ledger instead.
func TestSnapshotOutsideItsWindowIsNotUsed(t *testing.T) {
	defer task.SetFlightWindow(16)()
	ctx := context.Background()
	e := newEnv(t, "dev")
	e.indexedCalls(40)
	if err := e.svc.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	want := task.StateBytes(e.svc, e.clk.Now())
	if err := task.ForgeSnapshot(e.svc, func(st *task.State) { task.SetMaxAuthorized(st, 1<<40) }); err != nil {
		t.Fatal(err)
	}
	buf := &testkit.Buffer{}
	if err := e.reopen(task.Config{Logger: slog.New(slog.NewTextHandler(buf, nil))}); err != nil {
		t.Fatal(err)
	}
	if log := buf.String(); !strings.Contains(log, "snapshot is not used") || strings.Contains(log, "loaded from its snapshot") {
		t.Errorf("a start on a snapshot outside its window:\n%s", log)
	}
	if got := task.StateBytes(e.svc, e.clk.Now()); !bytes.Equal(got, want) {
		t.Error("the replayed state differs from the state before")
	}
}
