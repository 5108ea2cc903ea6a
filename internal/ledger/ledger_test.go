package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/sqlite"
	"github.com/writhq/writ/internal/testkit"
)

func TestAppendReadBack(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
	d, l := openDir(t, t.TempDir(), func(c *ledger.Config) { c.Now = func() time.Time { return now } })

	events := []ledger.Event{
		{Type: ledger.TypeTaskRequested, TaskID: "tsk_1", Principal: "oidc:alice", Data: json.RawMessage(`{"intent":"summarize","b":[1,2]}`),
			Bodies: map[string][]byte{"intent": []byte("summarize Q3 invoices"), "raw_args": {0, 1, 2, 255}}},
		{Type: ledger.TypeActionAuthorized, Agent: "spiffe://example.org/agent", JTI: "j1", TraceID: "t1",
			Data: json.RawMessage(` { "z": 1, "a": "\u00e9" } `)},
		{Type: "import.siem.alert"},
	}
	for i, e := range events {
		idx, err := l.Append(ctx, e)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if idx != uint64(i) {
			t.Fatalf("append %d got index %d", i, idx)
		}
	}
	leaves, err := d.Store.ReadLeaves(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) != len(events) {
		t.Fatalf("read %d leaves, want %d", len(leaves), len(events))
	}
	wantData := []string{`{"b":[1,2],"intent":"summarize"}`, `{"a":"é","z":1}`, ``}
	for i, leaf := range leaves {
		ent, err := ledger.ParseLeaf(uint64(i), leaf)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		want := events[i]
		if !ent.Event.Time.Equal(now) || ent.Event.Time.Location() != time.UTC {
			t.Errorf("leaf %d: time %v, want %v in UTC", i, ent.Event.Time, now)
		}
		got := ent.Event
		got.Time, want.Time, want.Bodies, want.Data = time.Time{}, time.Time{}, nil, nil
		got.Data = nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("leaf %d envelope (-want +got):\n%s", i, diff)
		}
		if string(ent.Event.Data) != wantData[i] {
			t.Errorf("leaf %d data %s, want canonical %s", i, ent.Event.Data, wantData[i])
		}
		if len(ent.Commitments) != len(events[i].Bodies) {
			t.Errorf("leaf %d has %d commitments, want %d", i, len(ent.Commitments), len(events[i].Bodies))
		}
		for name, data := range events[i].Bodies {
			b, err := d.Store.ReadBody(ctx, ledger.BodyRef{Index: uint64(i), Name: name})
			if err != nil {
				t.Fatalf("body %d/%s: %v", i, name, err)
			}
			if !bytes.Equal(b.Data, data) {
				t.Errorf("body %d/%s = %q, want %q", i, name, b.Data, data)
			}
			if len(b.Salt) != ledger.SaltSize {
				t.Errorf("body %d/%s salt is %d bytes", i, name, len(b.Salt))
			}
			if c := ledger.Commit(b.Salt, b.Data); c != ent.Commitments[name] {
				t.Errorf("body %d/%s: commitment %s, leaf says %s", i, name, c, ent.Commitments[name])
			}
			if strings.Contains(string(leaf), string(data)) && len(data) > 8 {
				t.Errorf("leaf %d holds body %s in the clear: %s", i, name, leaf)
			}
		}
	}
	closeAll(t, d, l)
	st := reopenStore(t, d.Path)
	rep := mustVerifyOK(t, st, d.VerifierKey)
	if rep.Size != 3 || rep.Bodies != 2 || rep.Uncovered != 0 {
		t.Errorf("report: size %d bodies %d uncovered %d, want 3, 2, 0", rep.Size, rep.Bodies, rep.Uncovered)
	}
}

// reopenStore opens the SQLite file of a closed data directory directly.
func reopenStore(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConcurrentAppendsGetDistinctIndexes(t *testing.T) {
	const workers, total = 64, 64 * 12
	d, l := openDir(t, t.TempDir(), nil)
	got := appendMany(t, l, 0, total, workers, true)
	if len(got) != total {
		t.Fatalf("%d appends succeeded, want %d", len(got), total)
	}
	byIndex := make(map[uint64]int, total)
	for n, idx := range got {
		if prev, dup := byIndex[idx]; dup {
			t.Fatalf("index %d given to both %d and %d", idx, prev, n)
		}
		byIndex[idx] = n
	}
	for i := uint64(0); i < total; i++ {
		if _, ok := byIndex[i]; !ok {
			t.Fatalf("no append got index %d", i)
		}
	}
	for i, leaf := range readAllLeaves(t, d.Store) {
		if n := eventN(t, uint64(i), leaf); n != byIndex[uint64(i)] {
			t.Fatalf("leaf %d holds n=%d, but that index was acknowledged for n=%d", i, n, byIndex[uint64(i)])
		}
	}
	closeAll(t, d, l)
	rep := mustVerifyOK(t, reopenStore(t, d.Path), d.VerifierKey)
	if rep.Size != total || rep.LatestCheckpoint != total {
		t.Errorf("verified size %d, latest checkpoint %d, want %d", rep.Size, rep.LatestCheckpoint, total)
	}
}

func TestAppendValidation(t *testing.T) {
	const maxBody = 64
	d, l := openDir(t, t.TempDir(), func(c *ledger.Config) { c.MaxBodyBytes = maxBody })
	ctx := context.Background()
	if _, err := l.Append(ctx, testEvent(0, true)); err != nil {
		t.Fatal(err)
	}
	ok := func(e ledger.Event) ledger.Event {
		if e.Type == "" {
			e.Type = "import.test"
		}
		return e
	}
	tests := []struct {
		name  string
		event ledger.Event
		field string
	}{
		{"unknown type", ledger.Event{Type: "task.exploded"}, "type"},
		{"empty type", ledger.Event{Type: ""}, "type"},
		{"bare import prefix", ledger.Event{Type: "import."}, "type"},
		{"import type with capitals", ledger.Event{Type: "import.SIEM"}, "type"},
		{"data is an array", ok(ledger.Event{Data: json.RawMessage(`[1,2]`)}), "data"},
		{"data is a string", ok(ledger.Event{Data: json.RawMessage(`"x"`)}), "data"},
		{"data is not JSON", ok(ledger.Event{Data: json.RawMessage(`{"a":`)}), "data"},
		{"body name with capital", ok(ledger.Event{Bodies: map[string][]byte{"Note": []byte("x")}}), "bodies"},
		{"body name starting with digit", ok(ledger.Event{Bodies: map[string][]byte{"1note": []byte("x")}}), "bodies"},
		{"empty body name", ok(ledger.Event{Bodies: map[string][]byte{"": []byte("x")}}), "bodies"},
		{"body name with slash", ok(ledger.Event{Bodies: map[string][]byte{"a/b": []byte("x")}}), "bodies"},
		{"body over MaxBodyBytes", ok(ledger.Event{Bodies: map[string][]byte{"note": bytes.Repeat([]byte("x"), maxBody+1)}}), "bodies.note"},
		{"canonical leaf over 65535 bytes", ok(ledger.Event{Data: json.RawMessage(`{"s":"` + strings.Repeat("a", ledger.MaxLeafBytes) + `"}`)}), ""},
		{"leaf over the limit only once escaped", ok(ledger.Event{Data: json.RawMessage(`{"s":"` + strings.Repeat(`\u0001`, ledger.MaxLeafBytes/6+1) + `"}`)}), ""},
		{"envelope field over 1024 bytes", ok(ledger.Event{TaskID: strings.Repeat("t", 1025)}), "task_id"},
		{"envelope field not UTF-8", ok(ledger.Event{Principal: "\xff"}), "principal"},
		{"time before 1970", ok(ledger.Event{Time: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}), "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(ctx, tt.event)
			var ve *ledger.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Append error %v (%T), want *ledger.ValidationError", err, err)
			}
			if ve.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", ve.Field, tt.field, ve)
			}
			if n, err := d.Store.Size(ctx); err != nil || n != 1 {
				t.Errorf("store size %d (%v) after a rejected event, want 1", n, err)
			}
		})
	}
	// A body exactly at the limit is fine.
	if _, err := l.Append(ctx, ok(ledger.Event{Bodies: map[string][]byte{"note": bytes.Repeat([]byte("x"), maxBody)}})); err != nil {
		t.Errorf("body of exactly MaxBodyBytes: %v", err)
	}
	closeAll(t, d, l)
	rep := mustVerifyOK(t, reopenStore(t, d.Path), d.VerifierKey)
	if rep.Size != 2 || rep.Bodies != 3 {
		t.Errorf("size %d bodies %d, want 2 and 3: a rejected event left something behind", rep.Size, rep.Bodies)
	}
}

func TestErase(t *testing.T) {
	ctx := context.Background()
	d, l := openDir(t, t.TempDir(), nil)
	for n := range 4 {
		if _, err := l.Append(ctx, testEvent(n, true)); err != nil {
			t.Fatal(err)
		}
	}
	ref := ledger.BodyRef{Index: 3, Name: "args"} // event 3 has note and args
	leaves, err := d.Store.ReadLeaves(ctx, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	ent, err := ledger.ParseLeaf(3, leaves[0])
	if err != nil {
		t.Fatal(err)
	}
	at, err := l.Erase(ctx, ref, "GDPR request 2026-118", "oidc:dpo")
	if err != nil {
		t.Fatal(err)
	}
	if at != 4 {
		t.Errorf("erasure recorded at %d, want 4", at)
	}
	if _, err := d.Store.ReadBody(ctx, ref); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("erased body still readable: err %v", err)
	}
	if _, err := d.Store.ReadBody(ctx, ledger.BodyRef{Index: 3, Name: "note"}); err != nil {
		t.Errorf("the other body of the event went with it: %v", err)
	}
	got, err := d.Store.ReadLeaves(ctx, at, at+1)
	if err != nil || len(got) != 1 {
		t.Fatalf("reading the erasure event: %v", err)
	}
	rec, err := ledger.ParseLeaf(at, got[0])
	if err != nil {
		t.Fatal(err)
	}
	var eb ledger.ErasedBody
	if err := json.Unmarshal(rec.Event.Data, &eb); err != nil {
		t.Fatal(err)
	}
	want := ledger.ErasedBody{Index: 3, Name: "args", Commitment: ent.Commitments["args"], Reason: "GDPR request 2026-118"}
	if rec.Event.Type != ledger.TypeBodyErased || rec.Event.Principal != "oidc:dpo" || eb != want {
		t.Errorf("erasure event %s %q %+v, want %s oidc:dpo %+v", rec.Event.Type, rec.Event.Principal, eb, ledger.TypeBodyErased, want)
	}

	errTests := []struct {
		name   string
		ref    ledger.BodyRef
		reason string
		want   error
	}{
		{"erased twice", ref, "again", ledger.ErrNotFound},
		{"no such event", ledger.BodyRef{Index: 99, Name: "note"}, "r", ledger.ErrNotFound},
		{"no such body", ledger.BodyRef{Index: 1, Name: "args"}, "r", ledger.ErrNotFound},
	}
	for _, tt := range errTests {
		if _, err := l.Erase(ctx, tt.ref, tt.reason, ""); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
	var ve *ledger.ValidationError
	if _, err := l.Erase(ctx, ledger.BodyRef{Index: 0, Name: "note"}, "", ""); !errors.As(err, &ve) {
		t.Errorf("erase without a reason: err %v, want *ValidationError", err)
	}
	if n, _ := d.Store.Size(ctx); n != 5 {
		t.Errorf("store size %d after failed erasures, want 5", n)
	}
	closeAll(t, d, l)
	rep := mustVerifyOK(t, reopenStore(t, d.Path), d.VerifierKey)
	if rep.Erased != 1 || rep.Bodies != 5 {
		t.Errorf("erased %d bodies %d, want 1 and 5", rep.Erased, rep.Bodies)
	}
}

// flakyStore wraps the SQLite store and fails Commit while fail is set. It
// counts the ErrConflict answers of the real store: a ledger that rolls its
// tree back after a failed commit never causes one.
type flakyStore struct {
	*sqlite.Store
	fail      atomic.Bool
	conflicts atomic.Int64
	failed    atomic.Int64
}

var errDiskGone = errors.New("disk I/O error (injected)")

func (s *flakyStore) Commit(ctx context.Context, b *ledger.Batch) error {
	if s.fail.Load() {
		s.failed.Add(1)
		return errDiskGone
	}
	err := s.Store.Commit(ctx, b)
	if errors.Is(err, ledger.ErrConflict) {
		s.conflicts.Add(1)
	}
	return err
}

func TestCommitFailureFailsClosedAndRollsBack(t *testing.T) {
	ctx := context.Background()
	d, _ := openDir(t, t.TempDir(), nil)
	fs := &flakyStore{Store: d.Store.(*sqlite.Store)}
	l, err := ledger.New(ctx, ledger.Config{Store: fs, Signer: d.Signer, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)

	// 250 events, then fail a run of batches that would cross the first tile
	// boundary (256), so the rollback must undo a completed tile too.
	appendMany(t, l, 0, 250, 16, true)
	fs.fail.Store(true)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for n := 1000; n < 1020; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(ctx, testEvent(n, true))
			if !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("append %d while the store fails: err %v, want ErrUnavailable", n, err)
				return
			}
			if !strings.Contains(err.Error(), errDiskGone.Error()) {
				t.Errorf("error %q does not say why", err)
			}
			failures.Add(1)
		}()
	}
	wg.Wait()
	if failures.Load() != 20 || fs.failed.Load() == 0 {
		t.Fatalf("%d appends failed over %d failed commits, want 20 over at least one", failures.Load(), fs.failed.Load())
	}
	if n, _ := d.Store.Size(ctx); n != 250 {
		t.Fatalf("store size %d after failed commits, want 250", n)
	}
	fs.fail.Store(false)
	idx, err := l.Append(ctx, testEvent(2000, true))
	if err != nil || idx != 250 {
		t.Fatalf("first append after recovery: index %d err %v, want 250", idx, err)
	}
	got := appendMany(t, l, 2001, 60, 16, true)
	for n, idx := range got {
		if idx < 251 || idx >= 311 {
			t.Errorf("event %d got index %d, want 251..310", n, idx)
		}
	}
	if c := fs.conflicts.Load(); c != 0 {
		t.Errorf("the ledger hit %d conflicts after the failure: its tree was not rolled back", c)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	leaves := readAllLeaves(t, d.Store)
	for i, leaf := range leaves {
		if n := eventN(t, uint64(i), leaf); n >= 1000 && n < 1020 {
			t.Errorf("event %d (never acknowledged) is stored at %d", n, i)
		}
	}
	rep := mustVerifyOK(t, d.Store, d.VerifierKey)
	if rep.Size != 311 || rep.Uncovered != 0 {
		t.Errorf("size %d uncovered %d, want 311 and 0", rep.Size, rep.Uncovered)
	}
}

func TestCloseCommitsQueuedAndSignsFinalCheckpoint(t *testing.T) {
	ctx := context.Background()
	d, l := openDir(t, t.TempDir(), func(c *ledger.Config) { c.CheckpointInterval = time.Hour })
	appendMany(t, l, 0, 10, 4, false)
	if cp, err := d.Store.LatestCheckpoint(ctx); err != nil || cp.Size != 0 {
		t.Fatalf("latest checkpoint before Close has size %d (%v), want 0 (the interval is an hour)", cp.Size, err)
	}
	// Appenders race Close: each either gets an index (and its event must be
	// stored) or ErrClosed.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[uint64]int{}
		start = make(chan struct{})
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := range 20 {
				n := 100 + w*20 + k
				idx, err := l.Append(ctx, testEvent(n, false))
				if errors.Is(err, ledger.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append %d: %v", n, err)
					return
				}
				mu.Lock()
				acked[idx] = n
				mu.Unlock()
			}
		}()
	}
	close(start)
	// Close once appends are under way, while most are still to come.
	testkit.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) == 0 {
			return errors.New("no append acknowledged")
		}
		return nil
	})
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := l.Append(ctx, testEvent(9999, false)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("append after Close: %v, want ErrClosed", err)
	}
	size, err := d.Store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != uint64(10+len(acked)) {
		t.Errorf("store holds %d events; 10 + %d acknowledged", size, len(acked))
	}
	leaves := readAllLeaves(t, d.Store)
	for idx, n := range acked {
		if got := eventN(t, idx, leaves[idx]); got != n {
			t.Errorf("index %d holds n=%d, acknowledged for %d", idx, got, n)
		}
	}
	cp := latestCheckpoint(t, d.Store, d.VerifierKey)
	if cp.Size != size {
		t.Errorf("latest checkpoint covers %d, store holds %d", cp.Size, size)
	}
	if root := treeRoot(t, leaves); !bytes.Equal(root, cp.Root) {
		t.Errorf("final checkpoint root %x, recomputed %x", cp.Root, root)
	}
	mustVerifyOK(t, d.Store, d.VerifierKey)
}

func TestReopenContinuesTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Sessions end at sizes around tile boundaries, so the reopened ledger
	// must rebuild edges that are empty, partial and just completed.
	ends := []int{1, 2, 255, 256, 257, 300, 511, 512, 513, 520}
	prev := 0
	for s, end := range ends {
		d, l := openDir(t, dir, nil)
		if n, _ := d.Store.Size(ctx); n != uint64(prev) {
			t.Fatalf("session %d opened at size %d, want %d", s, n, prev)
		}
		got := appendMany(t, l, prev, end-prev, 16, s%2 == 0)
		for n, idx := range got {
			if idx < uint64(prev) || idx >= uint64(end) {
				t.Fatalf("session %d: event %d got index %d, want %d..%d", s, n, idx, prev, end-1)
			}
		}
		closeAll(t, d, l)
		st := reopenStore(t, dir)
		leaves := readAllLeaves(t, st)
		cp := latestCheckpoint(t, st, d.VerifierKey)
		if cp.Size != uint64(end) {
			t.Fatalf("session %d: latest checkpoint size %d, want %d", s, cp.Size, end)
		}
		if root := treeRoot(t, leaves); !bytes.Equal(root, cp.Root) {
			t.Fatalf("session %d: checkpoint root %x, fresh recomputation %x", s, cp.Root, root)
		}
		rep := mustVerifyOK(t, st, d.VerifierKey)
		if rep.Size != uint64(end) {
			t.Fatalf("session %d: verified size %d", s, rep.Size)
		}
		st.Close()
		prev = end
	}
}

func TestConcurrentErasuresOfOneBody(t *testing.T) {
	ctx := context.Background()
	d, l := openDir(t, t.TempDir(), nil)
	if _, err := l.Append(ctx, testEvent(1, true)); err != nil {
		t.Fatal(err)
	}
	ref := ledger.BodyRef{Index: 0, Name: "note"}
	var wg sync.WaitGroup
	var ok, notFound atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Erase(ctx, ref, "duplicate request", "")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ledger.ErrNotFound):
				notFound.Add(1)
			default:
				t.Errorf("erase: %v", err)
			}
		}()
	}
	wg.Wait()
	closeAll(t, d, l)
	rep := mustVerifyOK(t, reopenStore(t, d.Path), d.VerifierKey)
	if ok.Load() == 1 && notFound.Load() == 7 && rep.Size == 2 {
		return
	}
	knownBug(t, "8 concurrent erasures of one body: %d succeeded and %d got ErrNotFound; the ledger holds %d erasure records of it. "+
		"Erase checks that the body exists before it queues the erasure, so racing calls all pass the check; the sequencer should "+
		"re-check (or Store.Commit should fail the batch entry) when the body is already gone", ok.Load(), notFound.Load(), rep.Size-1)
}
