package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/jcs"
)

// withLinks must give exactly the leaf appendLeaf writes with the links
// set, and that a generic canonicalizer writes, whichever members are
// around the slots.
func TestWithLinksMatchesCanonicalLeaf(t *testing.T) {
	seven, nine := uint64(7), uint64(9007199254740991)
	at := "2026-11-25T21:00:00.000000000Z"
	docs := []leafDoc{
		{Type: TypeTaskRequested, Time: at, TaskID: "t"},
		{Type: TypeTaskRequested, Time: at, TaskID: "t", Agent: "a", DecisionID: "d"},
		{Type: TypeTaskRequested, Time: at, TaskID: "t", JTI: "j", PolicyVersion: "p", Principal: "x"},
		{Type: TypeActionAuthorized, Time: at, TaskID: "t", Agent: "a", DecisionID: "d", JTI: "j", PolicyVersion: "p", Principal: "x", TraceID: "tr",
			Data: json.RawMessage(`{"prev":1,"delegation":2}`), Commitments: map[string]string{"arguments": "sha256:00"}},
		{Type: "import.x", Time: at, TaskID: "t", Data: json.RawMessage(`{}`)},
	}
	for _, d := range docs {
		for _, links := range [][2]*uint64{{nil, nil}, {&seven, nil}, {nil, &seven}, {&nine, &seven}} {
			d.V = EnvelopeVersion
			var slots linkSlots
			bare, err := appendLeafSlots(nil, &d, &slots)
			if err != nil {
				t.Fatal(err)
			}
			got := withLinks(bare, slots, links[0], links[1])
			d.Delegation, d.Prev = links[0], links[1]
			want, err := appendLeaf(nil, &d)
			if err != nil {
				t.Fatal(err)
			}
			generic, err := jcs.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || !bytes.Equal(want, generic) {
				t.Errorf("links %v %v:\nwithLinks  %s\nappendLeaf %s\njcs        %s", links[0], links[1], got, want, generic)
			}
			d.Delegation, d.Prev = nil, nil
		}
	}
}

// chainLeaf is the leaf of e at envelope version v with the given links.
func chainLeaf(t *testing.T, v int, e Event, deleg, prev *uint64) []byte {
	t.Helper()
	d := leafDoc{V: v, Type: e.Type, Time: "2026-11-25T21:00:00.000000000Z", TaskID: e.TaskID, Data: e.Data, Delegation: deleg, Prev: prev}
	leaf, err := appendLeaf(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// signedLog is a memStore holding leaves, with their tiles and a signed
// checkpoint: a log that is whole whatever its leaves say.
func signedLog(t *testing.T, leaves [][]byte) (*memStore, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "chain.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	st := newMemStore()
	tr := newTree()
	for _, l := range leaves {
		if err := tr.appendLeafHash(LeafHash(l)); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := tr.root()
	cp, err := signCheckpoint(signer, signer.Name(), tr.size(), root)
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{Start: 0, Leaves: leaves, Tiles: tr.takeDirty(), Checkpoint: &StoredCheckpoint{Size: tr.size(), Note: cp}}
	if err := st.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return st, verifier, vkey
}

func u(n uint64) *uint64 { return &n }

func TestVerifyChecksTaskChains(t *testing.T) {
	req := func(task string) Event { return Event{Type: TypeTaskRequested, TaskID: task} }
	act := func(task string) Event { return Event{Type: TypeActionAuthorized, TaskID: task} }
	deleg := func(parent, child string) Event {
		return Event{Type: TypeTaskDelegated, TaskID: parent, Data: json.RawMessage(`{"child_task_id":"` + child + `"}`)}
	}
	type leaf struct {
		v           int
		e           Event
		deleg, prev *uint64
	}
	for _, tt := range []struct {
		name   string
		leaves []leaf
		// want is the index and a part of the first chain failure; -1
		// for none.
		want     int64
		wantText string
	}{
		{"whole", []leaf{{2, req("a"), nil, nil}, {2, req("c"), u(2), nil}, {2, deleg("a", "c"), nil, u(0)},
			{2, Event{Type: "import.x"}, nil, nil}, {2, act("c"), nil, u(1)}, {2, act("a"), nil, u(2)}}, -1, ""},
		{"older events carry no links", []leaf{{1, req("a"), nil, nil}, {1, act("a"), nil, nil}, {2, act("a"), nil, u(1)}}, -1, ""},
		{"a link skips an event", []leaf{{2, req("a"), nil, nil}, {2, act("a"), nil, u(0)}, {2, act("a"), nil, u(0)}},
			2, "names event 0 as the previous event of task a, but the task's previous event is 1"},
		{"a link names another task's event", []leaf{{2, req("a"), nil, nil}, {2, req("b"), nil, nil}, {2, act("a"), nil, u(1)}},
			2, "the task's previous event is 0"},
		{"a first event names a previous one", []leaf{{2, Event{Type: "import.x"}, nil, nil}, {2, act("a"), nil, u(0)}},
			1, "it is the task's first event"},
		{"an event names no previous one", []leaf{{2, req("a"), nil, nil}, {2, act("a"), nil, nil}, {2, act("a"), nil, u(0)}},
			1, "names no previous event, but event 0 is of the same task a"},
		{"a delegation names another event", []leaf{{2, req("a"), nil, nil}, {2, req("c"), u(2), nil}, {2, act("a"), nil, u(0)}},
			1, "names event 2 as the task.delegated that opened task c"},
		{"a delegation names another child", []leaf{{2, req("a"), nil, nil}, {2, req("c"), u(2), nil}, {2, deleg("a", "d"), nil, u(0)}},
			1, `naming child "d"`},
		{"a delegation past the end", []leaf{{2, req("a"), nil, nil}, {2, req("c"), u(5), nil}},
			1, "the log ends before it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var leaves [][]byte
			for _, l := range tt.leaves {
				leaves = append(leaves, chainLeaf(t, l.v, l.e, l.deleg, l.prev))
			}
			st, v, vkey := signedLog(t, leaves)
			rep, err := Verify(context.Background(), st, v, vkey)
			if err != nil {
				t.Fatal(err)
			}
			var first *Failure
			for i, f := range rep.Failures {
				if f.Check == "chain" {
					first = &rep.Failures[i]
					break
				}
				t.Errorf("unexpected failure: %s", f)
			}
			switch {
			case tt.want < 0 && first != nil:
				t.Errorf("whole chains fail: %s", first)
			case tt.want >= 0 && first == nil:
				t.Errorf("broken chain not caught; report %+v", rep)
			case tt.want >= 0 && (first.Index != tt.want || !strings.Contains(first.Detail, tt.wantText)):
				t.Errorf("first chain failure %s, want event %d: …%s…", first, tt.want, tt.wantText)
			}
		})
	}
}

// The sequencer's links, read back, are what Verify expects; a ledger
// reopened on the store goes on from the stored chains.
func TestSequencerLinksTasks(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	kp := testKeyPair(t)
	open := func() *Ledger {
		l, err := New(ctx, Config{Store: st, Signer: kp})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	ev := func(typ, task string) Event { return Event{Type: typ, TaskID: task} }
	if _, err := l.AppendAll(ctx, []Event{ev(TypeTaskRequested, "a"), ev(TypePolicyDecided, "a"), ev("import.x", "")}); err != nil {
		t.Fatal(err)
	}
	child := Event{Type: TypeTaskRequested, TaskID: "c", Parent: "a"}
	if _, err := l.AppendAll(ctx, []Event{child, ev(TypePolicyDecided, "c"),
		{Type: TypeTaskDelegated, TaskID: "a", Data: json.RawMessage(`{"child_task_id":"c"}`)}, ev(TypeTaskActivated, "c")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l = open()
	if _, err := l.Append(ctx, ev(TypeTaskCompleted, "a")); err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	want := []struct{ deleg, prev *uint64 }{{}, {nil, u(0)}, {}, {u(5), nil}, {nil, u(3)}, {nil, u(1)}, {nil, u(4)}, {nil, u(5)}}
	leaves, _ := st.ReadLeaves(ctx, 0, 100)
	if len(leaves) != len(want) {
		t.Fatalf("%d leaves, want %d", len(leaves), len(want))
	}
	for i, leaf := range leaves {
		ent, err := ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatal(err)
		}
		if !sameLink(ent.Event.Delegation, want[i].deleg) || !sameLink(ent.Event.Prev, want[i].prev) || ent.Version != EnvelopeVersion {
			t.Errorf("leaf %d = %s; want delegation %v prev %v", i, leaf, show(want[i].deleg), show(want[i].prev))
		}
	}
	rep, err := Verify(ctx, st, kp.Verifier(), "")
	if err != nil || !rep.OK() || rep.Links != 6 || rep.Tasks != 2 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func sameLink(a, b *uint64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(p *uint64) any {
	if p == nil {
		return "none"
	}
	return *p
}

func testKeyPair(t *testing.T) *KeyPair {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "chain.test/seq")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPair(skey)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// Append refuses links a caller sets and a parent without its delegation.
func TestAppendRefusesCallerLinks(t *testing.T) {
	ctx := context.Background()
	l, err := New(ctx, Config{Store: newMemStore(), Signer: testKeyPair(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	delegated := Event{Type: TypeTaskDelegated, TaskID: "p", Data: json.RawMessage(`{"child_task_id":"c"}`)}
	for _, tt := range []struct {
		name   string
		events []Event
		field  string
	}{
		{"prev", []Event{{Type: "import.x", TaskID: "t", Prev: u(0)}}, "prev"},
		{"delegation", []Event{{Type: TypeTaskRequested, TaskID: "t", Delegation: u(3)}}, "prev"},
		{"parent without its delegation", []Event{{Type: TypeTaskRequested, TaskID: "c", Parent: "p"}}, "parent"},
		{"delegation before the child", []Event{delegated, {Type: TypeTaskRequested, TaskID: "c", Parent: "p"}}, "parent"},
		{"delegation of another child", []Event{{Type: TypeTaskRequested, TaskID: "d", Parent: "p"}, delegated}, "parent"},
		{"parent on another type", []Event{{Type: TypeTaskActivated, TaskID: "c", Parent: "p"}, delegated}, "parent"},
	} {
		_, err := l.AppendAll(ctx, tt.events)
		ve, ok := err.(*ValidationError)
		if !ok || ve.Field != tt.field {
			t.Errorf("%s: err %v, want a validation error on %s", tt.name, err, tt.field)
		}
	}
	if n, _ := l.cfg.Store.Size(ctx); n != 0 {
		t.Errorf("%d events written", n)
	}
}

// BenchmarkFoldHeads measures what opening costs per stored event: reading
// its task from the leaf (the scan at start, and other writers' leaves
// under the lock).
func BenchmarkFoldHeads(b *testing.B) {
	lim := limits{maxBody: 1 << 20}
	var leaves [][]byte
	for i := range 1000 {
		e := Event{Type: TypeActionAuthorized, TaskID: "tsk_01JD8X6Q5Z3V4M2N8P7R" + string(rune('a'+i%26)), Principal: "oidc:https://id.example.com#alice",
			Agent: "spiffe://example.org/agent/summarizer", DecisionID: "dec_1", PolicyVersion: "sha256:9f2c4a1b7e3d5f60c8a9b2d1e4f70a3c5b6d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
			Data:   json.RawMessage(`{"action_id":"act_1","tool":"invoices.read","operation":"read","resource":"erp://invoices/2026-Q3/1","data_class":"confidential","reasons":["task scope covers tool and resource"]}`),
			Bodies: map[string][]byte{"arguments": []byte(`{"invoice":"1"}`)}, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		leaf, _, slots, err := encode(&e, lim)
		if err != nil {
			b.Fatal(err)
		}
		p := uint64(i)
		leaves = append(leaves, withLinks(leaf, slots, nil, &p))
	}
	h := newTaskHeads()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := h.fold(h.size, leaves[i%len(leaves)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}
