// Package storetest is the test suite every ledger store passes: the
// contract of ledger.Store (and of ledger.SharedStore, for stores several
// writers share), checked against a real database.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/bodyenc"
	"github.com/writhq/writ/internal/store/leafenc"
)

// Opener opens a store on a fresh, empty database for one test. The function
// it returns opens a handle on that same database each time it is called;
// handles are closed when the test ends.
type Opener func(t *testing.T) func(t *testing.T) ledger.Store

// Run runs the suite.
func Run(t *testing.T, fresh Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) ledger.Store)
	}{
		{"CommitIsAtomic", testCommitIsAtomic},
		{"CommitCancelledWritesNothing", testCommitCancelled},
		{"ReadOrdering", testReadOrdering},
		{"NotFound", testNotFound},
		{"BodiesComeBackExact", testBodiesExact},
		{"BodyBatch", testBodyBatch},
		{"InitMetaKeepsTheFirstValue", testInitMeta},
		{"ReopenKeepsData", testReopen},
		{"LedgerRoundTrip", testLedgerRoundTrip},
		{"TaskChains", func(t *testing.T, open func(*testing.T) ledger.Store) { testTaskChains(t, open, 1) }},
		{"DPoPProofsClaimedOnce", testClaimProof},
		{"WitnessCosignatures", testWitness},
		{"CursorsKeptByName", testCursors},
		{"LeavesAcrossSpans", testLeavesAcrossSpans},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, fresh(t)) })
	}
}

// RunShared runs the checks of stores that several writers share: several
// ledgers appending to one database at once build one log.
func RunShared(t *testing.T, fresh Opener) {
	t.Run("ConcurrentLedgersOneLog", func(t *testing.T) { testConcurrentLedgers(t, fresh(t)) })
	t.Run("TaskChainsAcrossWriters", func(t *testing.T) { testTaskChains(t, fresh(t), 3) })
}

func leafN(i uint64) []byte { return []byte(fmt.Sprintf(`{"n":%d}`, i)) }

func hashN(i uint64) []byte {
	h := sha256.Sum256(leafN(i))
	return h[:]
}

// Batch returns a batch of n leaves from start, one body each, and the
// level-0 tile as it would be after it (for a backend's own tests).
func Batch(start, n uint64) *ledger.Batch { return batch(start, n) }

func batch(start, n uint64) *ledger.Batch {
	b := &ledger.Batch{Start: start, Tiles: map[ledger.TileID][]byte{}}
	var tile []byte
	for i := uint64(0); i < start+n; i++ {
		tile = append(tile, hashN(i)...)
	}
	b.Tiles[ledger.TileID{Level: 0, Index: 0}] = tile
	for i := start; i < start+n; i++ {
		b.Leaves = append(b.Leaves, leafN(i))
		b.Bodies = append(b.Bodies, ledger.Body{Index: i, Name: "note", Salt: []byte{byte(i)}, Data: []byte(fmt.Sprintf("body %d", i))})
	}
	b.Checkpoint = &ledger.StoredCheckpoint{Size: start + n, Note: []byte(fmt.Sprintf("checkpoint %d\n", start+n))}
	return b
}

type snapshot struct {
	Size        uint64
	Leaves      []string
	Bodies      []string
	Checkpoints []string
	Tile        []byte
}

func snap(t *testing.T, s ledger.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var sn snapshot
	var err error
	if sn.Size, err = s.Size(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanLeaves(ctx, 0, func(i uint64, l []byte) error {
		sn.Leaves = append(sn.Leaves, fmt.Sprintf("%d=%s", i, l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanBodies(ctx, func(b ledger.Body) error {
		sn.Bodies = append(sn.Bodies, fmt.Sprintf("%d/%s=%x:%s", b.Index, b.Name, b.Salt, b.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanCheckpoints(ctx, func(cp ledger.StoredCheckpoint) error {
		sn.Checkpoints = append(sn.Checkpoints, fmt.Sprintf("%d=%s", cp.Size, cp.Note))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sn.Tile, err = s.ReadTile(ctx, ledger.TileID{})
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		t.Fatal(err)
	}
	return sn
}

func testCommitIsAtomic(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	if err := s.Commit(ctx, batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	before := snap(t, s)
	tests := []struct {
		name     string
		b        *ledger.Batch
		conflict bool
	}{
		{"start behind the store", batch(2, 4), true},
		{"start ahead of the store", batch(5, 2), true},
		{"start at zero again", batch(0, 1), true},
		{"fails part way: a body twice", func() *ledger.Batch {
			b := batch(3, 3)
			b.Bodies = append(b.Bodies, b.Bodies[0])
			return b
		}(), false},
		{"fails part way: many rows, then a duplicate body", func() *ledger.Batch {
			b := batch(3, 200)
			b.Bodies = append(b.Bodies, ledger.Body{Index: 4, Name: "note", Salt: []byte{1}, Data: []byte("dup")})
			return b
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.b.Erase = append(tt.b.Erase, ledger.BodyRef{Index: 1, Name: "note"})
			tt.b.Tiles[ledger.TileID{Level: 0, Index: 0}] = bytes.Repeat([]byte{0xee}, 32*9)
			err := s.Commit(ctx, tt.b)
			if err == nil {
				t.Fatal("Commit succeeded")
			}
			if got := errors.Is(err, ledger.ErrConflict); got != tt.conflict {
				t.Errorf("errors.Is(%v, ErrConflict) = %v, want %v", err, got, tt.conflict)
			}
			if diff := cmp.Diff(before, snap(t, s)); diff != "" {
				t.Errorf("a failed Commit changed the store (-before +after):\n%s", diff)
			}
		})
	}
	if err := s.Commit(ctx, batch(3, 2)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx); n != 5 {
		t.Errorf("size %d, want 5", n)
	}
}

func testCommitCancelled(t *testing.T, open func(*testing.T) ledger.Store) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Commit(ctx, batch(0, 2)); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if sn := snap(t, s); sn.Size != 0 || len(sn.Bodies) != 0 || len(sn.Checkpoints) != 0 || sn.Tile != nil {
		t.Errorf("a cancelled Commit wrote %+v", sn)
	}
}

func testReadOrdering(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	b0 := &ledger.Batch{Start: 0, Checkpoint: &ledger.StoredCheckpoint{Size: 0, Note: []byte("cp0")}}
	b1 := &ledger.Batch{Start: 0, Leaves: [][]byte{leafN(0), leafN(1), leafN(2)},
		Bodies: []ledger.Body{
			{Index: 2, Name: "zeta", Salt: []byte{1}, Data: []byte("2z")},
			{Index: 0, Name: "note", Salt: []byte{2}, Data: []byte("0n")},
			{Index: 2, Name: "alpha", Salt: []byte{3}, Data: []byte("2a")},
		},
		Checkpoint: &ledger.StoredCheckpoint{Size: 3, Note: []byte("cp3")}}
	b2 := &ledger.Batch{Start: 3, Leaves: [][]byte{leafN(3), leafN(4)},
		Bodies:     []ledger.Body{{Index: 4, Name: "b", Salt: []byte{4}, Data: []byte("4b")}, {Index: 3, Name: "a", Salt: []byte{5}, Data: []byte("3a")}},
		Checkpoint: &ledger.StoredCheckpoint{Size: 5, Note: []byte("cp5")}}
	for _, b := range []*ledger.Batch{b0, b1, b2} {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A second checkpoint for a size keeps the first.
	if err := s.Commit(ctx, &ledger.Batch{Start: 5, Checkpoint: &ledger.StoredCheckpoint{Size: 5, Note: []byte("other")}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		start, end uint64
		want       []uint64
	}{
		{0, 5, []uint64{0, 1, 2, 3, 4}},
		{1, 3, []uint64{1, 2}},
		{3, 100, []uint64{3, 4}},
		{5, 9, nil},
		{4, 2, nil},
	} {
		got, err := s.ReadLeaves(ctx, tt.start, tt.end)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for _, i := range tt.want {
			want = append(want, leafN(i))
		}
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ReadLeaves(%d, %d) (-want +got):\n%s", tt.start, tt.end, diff)
		}
	}
	var scanned []string
	if err := s.ScanLeaves(ctx, 2, func(i uint64, l []byte) error {
		scanned = append(scanned, fmt.Sprintf("%d=%s", i, l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`2={"n":2}`, `3={"n":3}`, `4={"n":4}`}, scanned); diff != "" {
		t.Errorf("ScanLeaves from 2 (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.ScanLeaves(ctx, 0, func(uint64, []byte) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ScanLeaves returned %v after %d calls; want fn's error after 1", err, calls)
	}
	var bodies []string
	if err := s.ScanBodies(ctx, func(b ledger.Body) error {
		bodies = append(bodies, fmt.Sprintf("%d/%s=%s", b.Index, b.Name, b.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0/note=0n", "2/alpha=2a", "2/zeta=2z", "3/a=3a", "4/b=4b"}, bodies); diff != "" {
		t.Errorf("ScanBodies order (-want +got):\n%s", diff)
	}
	var cps []string
	if err := s.ScanCheckpoints(ctx, func(cp ledger.StoredCheckpoint) error {
		cps = append(cps, fmt.Sprintf("%d=%s", cp.Size, cp.Note))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0=cp0", "3=cp3", "5=cp5"}, cps); diff != "" {
		t.Errorf("ScanCheckpoints (-want +got):\n%s", diff)
	}
	latest, err := s.LatestCheckpoint(ctx)
	if err != nil || latest.Size != 5 || string(latest.Note) != "cp5" {
		t.Errorf("LatestCheckpoint = %d %q (%v), want 5 cp5", latest.Size, latest.Note, err)
	}
	b, err := s.ReadBody(ctx, ledger.BodyRef{Index: 2, Name: "alpha"})
	if err != nil || string(b.Data) != "2a" || !bytes.Equal(b.Salt, []byte{3}) {
		t.Errorf("ReadBody = %+v (%v)", b, err)
	}
}

// PolicyInput is a body of the shape writ records with most calls, which
// a store keeps compressed.
var PolicyInput = []byte(`{"version":1,"point":"action","principal":{"id":"oidc:https://login.example.com/#u-8841"},"agent":{"id":"spiffe://corp.example/ns/agents/sa/reporter"},` +
	`"task":{"id":"tsk_3yq5lk2m7ezqv6ahb4xw2nrc7u","scope":{"tools":["reports.*"],"resources":["s3://reports/2026/*"],"operations":["read"],"data_class":"internal","environments":["prod"]},"state":"active"},` +
	`"action":{"tool":"reports.fetch","operation":"read","resource":"s3://reports/2026/q3.pdf","arguments":{"key":"2026/q3.pdf"},"data_class":"internal"},` +
	`"credential":{"jti":"kQ2m9x7Lw0pT4vB8nR1sYg","expires_at":"2026-11-30T10:15:00Z","act_chain":["spiffe://corp.example/ns/agents/sa/reporter"],"binding":"dpop"},` +
	`"request":{"time":"2026-11-30T10:05:12.339120774Z","environment":"prod","gateway":"mcp","source":"10.2.7.31"},` +
	`"history":{"version":1,"task":{"allowed":12,"denied":1,"in_flight":0,"tools":2,"operations":1,"max_data_class":"internal","max_data_class_level":1,"last_minute":{"calls":3,"allowed":3,"denied":0},"last_hour":{"calls":13,"allowed":12,"denied":1}},` +
	`"tool":{"allowed":7,"denied":0,"in_flight":0},"operation":{"allowed":12,"denied":1,"in_flight":0},"agent":{"last_minute":{"calls":3,"allowed":3,"denied":0},"last_hour":{"calls":40,"allowed":38,"denied":2}},` +
	`"resources":{"reached":5,"destinations":1,"resource_reached":false,"destination_reached":true},"approvals":{"held":0,"spent":0,"pending":0,"denied":0}},` +
	`"derived":{"tool_in_scope":true,"resource_in_scope":true,"operation_in_scope":true,"environment_in_scope":true,"data_class_level":1,"ceiling_level":1,"data_class_known":true,"delegated":false,"narrows_parent":true,"ttl_seconds":0,"ttl_valid":true}}`)

// testBodiesExact: whatever a store keeps on disk, a body comes back as it
// was committed, by ReadBody and by ScanBodies: one it compresses, bytes
// that do not compress, and the empty and short ones.
func testBodiesExact(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919>>3) ^ byte(i>>5)
	}
	bodies := map[string][]byte{"input": PolicyInput, "random": random, "empty": {}, "short": []byte(`{"id":1}`),
		"repeated": bytes.Repeat([]byte("a"), 1<<20), "note": []byte("body 0")}
	b := batch(0, 1)
	for _, name := range slices.Sorted(maps.Keys(bodies)) {
		if name == "note" {
			continue // batch's own
		}
		b.Bodies = append(b.Bodies, ledger.Body{Index: 0, Name: name, Salt: []byte{9, 9}, Data: bodies[name]})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for name, want := range bodies {
		got, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: name})
		if err != nil || !bytes.Equal(got.Data, want) || (name != "note" && !bytes.Equal(got.Salt, []byte{9, 9})) {
			t.Errorf("ReadBody(%s): %d bytes, %v; want the %d committed", name, len(got.Data), err, len(want))
		}
	}
	if br, ok := s.(ledger.BodyBatchReader); ok {
		for name, want := range bodies {
			got := 0
			if err := br.ReadBodyBatch(ctx, name, []uint64{0}, func(b ledger.Body) error {
				got++
				if !bytes.Equal(b.Data, want) {
					t.Errorf("ReadBodyBatch(%s): %d bytes, want the %d committed", name, len(b.Data), len(want))
				}
				return nil
			}); err != nil || got != 1 {
				t.Errorf("ReadBodyBatch(%s): %d bodies, %v", name, got, err)
			}
		}
	}
	n := 0
	if err := s.ScanBodies(ctx, func(got ledger.Body) error {
		n++
		if !bytes.Equal(got.Data, bodies[got.Name]) {
			t.Errorf("ScanBodies: %s has %d bytes, want the %d committed", got.Name, len(got.Data), len(bodies[got.Name]))
		}
		return nil
	}); err != nil || n != len(bodies) {
		t.Errorf("ScanBodies saw %d bodies, %v", n, err)
	}
}

func testNotFound(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("LatestCheckpoint on an empty store: %v", err)
	}
	if _, err := s.ReadTile(ctx, ledger.TileID{}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadTile: %v", err)
	}
	if _, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: "x"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadBody: %v", err)
	}
	if _, err := s.Meta(ctx, "origin"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Meta: %v", err)
	}
	if n, err := s.Size(ctx); n != 0 || err != nil {
		t.Errorf("Size = %d, %v", n, err)
	}
	if err := s.Commit(ctx, batch(0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &ledger.Batch{Start: 1, Erase: []ledger.BodyRef{{Index: 0, Name: "note"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: "note"}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadBody of an erased body: %v", err)
	}
}

// testBodyBatch: ledger.ReadBodyBatch over more bodies than one query of
// the store asks for returns the stored ones asked for, in index order,
// and passes over erased, missing and other-named ones.
func testBodyBatch(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	const n = 12000
	for start := uint64(0); start < n; start += 3000 {
		b := &ledger.Batch{Start: start}
		for i := start; i < start+3000; i++ {
			b.Leaves = append(b.Leaves, leafN(i))
			b.Bodies = append(b.Bodies, ledger.Body{Index: i, Name: "note", Salt: []byte{byte(i)}, Data: []byte(fmt.Sprintf("body %d", i))})
			if i%7 == 0 {
				b.Bodies = append(b.Bodies, ledger.Body{Index: i, Name: "other", Salt: []byte{1}, Data: []byte("other")})
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, &ledger.Batch{Start: n, Erase: []ledger.BodyRef{{Index: 9, Name: "note"}}}); err != nil {
		t.Fatal(err)
	}
	var ask, want []uint64
	for i := uint64(0); i < n; i += 1 + i%3 {
		ask = append(ask, i)
		if i != 9 {
			want = append(want, i)
		}
	}
	ask = append(ask, n+5)
	var got []uint64
	err := ledger.ReadBodyBatch(ctx, s, "note", ask, func(b ledger.Body) error {
		if b.Name != "note" || string(b.Data) != fmt.Sprintf("body %d", b.Index) || !bytes.Equal(b.Salt, []byte{byte(b.Index)}) {
			t.Fatalf("body %d: %+v", b.Index, b)
		}
		got = append(got, b.Index)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadBodyBatch (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	if err := ledger.ReadBodyBatch(ctx, s, "note", ask, func(ledger.Body) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ReadBodyBatch returned %v; want fn's error", err)
	}
}

func testInitMeta(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	for _, try := range []string{"first", "second", ""} {
		got, err := s.InitMeta(ctx, "origin", try)
		if err != nil {
			t.Fatal(err)
		}
		if got != "first" {
			t.Errorf("InitMeta(origin, %q) = %q, want first", try, got)
		}
	}
	s.Close()
	s = open(t)
	if v, err := s.Meta(ctx, "origin"); err != nil || v != "first" {
		t.Errorf("after reopen Meta = %q, %v", v, err)
	}
}

func testReopen(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	if err := s.Commit(ctx, batch(0, 4)); err != nil {
		t.Fatal(err)
	}
	want := snap(t, s)
	s.Close()
	for i := range 3 {
		s := open(t)
		if diff := cmp.Diff(want, snap(t, s)); diff != "" {
			t.Fatalf("reopen %d changed the store (-want +got):\n%s", i, diff)
		}
		s.Close()
	}
}

// NewKey returns a fresh checkpoint signing key for origin.
func NewKey(t testing.TB, origin string) *ledger.KeyPair {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ledger.NewKeyPair(skey)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func testEvent(n int) ledger.Event {
	return ledger.Event{Type: "import.test", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Bodies: map[string][]byte{"note": []byte(fmt.Sprintf("note %d", n))}}
}

// Verify runs the full verification of the ledger in s and fails the test
// on any failure.
func Verify(t *testing.T, s ledger.Store, kp *ledger.KeyPair) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(context.Background(), s, kp.Verifier(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verification failed: %+v", rep.Failures)
	}
	return rep
}

func testLedgerRoundTrip(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	kp := NewKey(t, "storetest.example/log")
	l, err := ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if _, err := l.Append(ctx, testEvent(w*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(ctx); err != nil || n != 320 {
		t.Fatalf("size %d (%v), want 320", n, err)
	}
	Verify(t, s, kp)
	// The ledger reopens on what it wrote.
	l, err = ledger.New(ctx, ledger.Config{Store: s, Signer: kp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, testEvent(-1)); err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	Verify(t, s, kp)
}

func testConcurrentLedgers(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	kp := NewKey(t, "storetest.example/shared")
	const writers, perWriter, goroutines = 3, 150, 6
	stores := make([]ledger.Store, writers)
	ledgers := make([]*ledger.Ledger, writers)
	for i := range writers {
		stores[i] = open(t)
		var err error
		ledgers[i], err = ledger.New(ctx, ledger.Config{Store: stores[i], Signer: kp})
		if err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	acked := map[uint64]int{}
	var wg sync.WaitGroup
	for i, l := range ledgers {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perWriter / goroutines {
					n := i*100000 + g*1000 + k
					idx, err := l.Append(ctx, testEvent(n))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, dup := acked[idx]; dup {
						t.Errorf("index %d acknowledged twice (events %d and %d)", idx, prev, n)
					}
					acked[idx] = n
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, l := range ledgers {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep := Verify(t, stores[0], kp)
	total := uint64(writers * perWriter)
	if rep.Size != total || uint64(len(acked)) != total {
		t.Fatalf("log size %d, %d acknowledged, want %d", rep.Size, len(acked), total)
	}
	// Every acknowledged event is at the index it was acknowledged with.
	err := stores[0].ScanLeaves(ctx, 0, func(i uint64, leaf []byte) error {
		e, err := ledger.ParseLeaf(i, leaf)
		if err != nil {
			return err
		}
		var d struct{ N int }
		if err := json.Unmarshal(e.Event.Data, &d); err != nil {
			return err
		}
		if want, ok := acked[i]; !ok || d.N != want {
			return fmt.Errorf("leaf %d holds event %d, acknowledged %d (%v)", i, d.N, want, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ProofClaimer is a store that keeps a durable record of accepted DPoP
// proofs (credential.SharedReplay): ClaimProof records key until until and
// reports whether it was not recorded already (or only with an expiry
// passed).
type ProofClaimer interface {
	ClaimProof(ctx context.Context, key []byte, until time.Time) (bool, error)
}

// testClaimProof: a proof's key is claimed once, across handles on the
// same database and after a reopen; claims made at once are each answered,
// one of them fresh; an expired record is taken over.
func testClaimProof(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	c, ok := open(t).(ProofClaimer)
	if !ok {
		t.Skip("the store keeps no record of DPoP proofs")
	}
	key := make([]byte, 32)
	rand.Read(key)
	live := time.Now().Add(time.Minute)
	if fresh, err := c.ClaimProof(ctx, key, live); err != nil || !fresh {
		t.Fatalf("first claim: %v %v", fresh, err)
	}
	if fresh, err := c.ClaimProof(ctx, key, live); err != nil || fresh {
		t.Fatalf("second claim on the same handle: %v %v", fresh, err)
	}
	other := open(t).(ProofClaimer)
	if fresh, err := other.ClaimProof(ctx, key, live); err != nil || fresh {
		t.Fatalf("claim on another handle: %v %v", fresh, err)
	}
	// Many at once, half of them the same key.
	same := make([]byte, 32)
	rand.Read(same)
	var wg sync.WaitGroup
	var mu sync.Mutex
	freshSame, freshOwn := 0, 0
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := same
			if i%2 == 1 {
				k = make([]byte, 32)
				rand.Read(k)
			}
			fresh, err := c.ClaimProof(ctx, k, live)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if fresh && i%2 == 0 {
				freshSame++
			} else if fresh {
				freshOwn++
			}
		}()
	}
	wg.Wait()
	if freshSame != 1 || freshOwn != 32 {
		t.Errorf("concurrent claims: the shared key fresh %d times (want 1), the 32 own keys %d (want 32)", freshSame, freshOwn)
	}
	// An expired record is taken over.
	old := make([]byte, 32)
	rand.Read(old)
	if fresh, err := c.ClaimProof(ctx, old, time.Now().Add(-time.Second)); err != nil || !fresh {
		t.Fatalf("claim of an already expired record: %v %v", fresh, err)
	}
	if fresh, err := other.ClaimProof(ctx, old, live); err != nil || !fresh {
		t.Fatalf("claim over an expired record: %v %v", fresh, err)
	}
}

// testCursors: a named cursor reads 0 until set, then the furthest it was
// set to, on any handle: a write behind it (a process that lost the
// consumer to another) leaves it; names are independent; bad names are
// refused.
func testCursors(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	c, ok := open(t).(ledger.Cursors)
	if !ok {
		t.Skip("the store keeps no cursors")
	}
	if n, err := c.Cursor(ctx, "witness/a"); err != nil || n != 0 {
		t.Fatalf("a cursor never set: %d, %v; want 0", n, err)
	}
	for _, step := range []struct{ set, want uint64 }{{5, 5}, {5, 5}, {1 << 40, 1 << 40}, {2, 1 << 40}, {1<<40 + 1, 1<<40 + 1}} {
		if err := c.SetCursor(ctx, "witness/a", step.set); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Cursor(ctx, "witness/a"); err != nil || n != step.want {
			t.Fatalf("after setting %d: %d, %v; want %d", step.set, n, err, step.want)
		}
	}
	if err := c.SetCursor(ctx, "sink/b", 9); err != nil {
		t.Fatal(err)
	}
	other := open(t).(ledger.Cursors)
	// Another handle's write behind the cursor leaves it too.
	if err := other.SetCursor(ctx, "sink/b", 3); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{"witness/a": 1<<40 + 1, "sink/b": 9, "sink/c": 0} {
		if n, err := other.Cursor(ctx, name); err != nil || n != want {
			t.Errorf("cursor %s on another handle: %d, %v; want %d", name, n, err, want)
		}
	}
	for _, bad := range []string{"", "with space", string(make([]byte, ledger.MaxCursorName+1))} {
		if err := c.SetCursor(ctx, bad, 1); err == nil {
			t.Errorf("cursor name %q accepted", bad)
		}
		if _, err := c.Cursor(ctx, bad); err == nil {
			t.Errorf("cursor name %q read", bad)
		}
	}
}

// BodiesCompressed checks that store s, whose database is db, keeps a
// policy input compressed on disk (internal/store/bodyenc) and a short body
// as it is, and gives both back as committed.
func BodiesCompressed(t *testing.T, s ledger.Store, db *sql.DB) {
	ctx := context.Background()
	b := batch(0, 1)
	b.Bodies = append(b.Bodies, ledger.Body{Index: 0, Name: "input", Salt: []byte{1}, Data: PolicyInput})
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		enc     int
		longest int
	}{{"input", bodyenc.Dict1, len(PolicyInput) / 3}, {"note", bodyenc.Plain, len("body 0")}} {
		var enc, n int
		if err := db.QueryRowContext(ctx, `SELECT enc, length(data) FROM bodies WHERE idx = 0 AND name = '`+tc.name+`'`).Scan(&enc, &n); err != nil {
			t.Fatal(err)
		}
		if enc != tc.enc || n > tc.longest {
			t.Errorf("%s is kept in %d bytes with encoding %d, want encoding %d in %d bytes at most", tc.name, n, enc, tc.enc, tc.longest)
		}
	}
	got, err := s.ReadBody(ctx, ledger.BodyRef{Index: 0, Name: "input"})
	if err != nil || !bytes.Equal(got.Data, PolicyInput) {
		t.Errorf("ReadBody: %d bytes, %v", len(got.Data), err)
	}
}

// callLeaf is leaf i of a log of tool calls: most of it the same from one
// call to the next, as in writ's own log, so that a store that compresses
// leaves has something to compress; a few are short, and a few long and
// random, which nothing compresses.
func callLeaf(i uint64) []byte {
	switch {
	case i%997 == 5:
		return []byte(fmt.Sprintf(`{"n":%d}`, i))
	case i%1361 == 7 || i == leafenc.SpanSize-6 || i == leafenc.SpanSize-2:
		b := make([]byte, 20000)
		rand.Read(b)
		return []byte(fmt.Sprintf(`{"blob":"%x","n":%d}`, b, i))
	}
	h := sha256.Sum256([]byte(fmt.Sprint(i)))
	return []byte(fmt.Sprintf(`{"agent":"spiffe://example.org/agent/a%d","commitments":{"input":"sha256:%x"},`+
		`"data":{"action_id":"act_%d","operation":"read","resource":"kb://public/doc-%d","tool":"kb.search"},`+
		`"policy_version":"sha256:%x","prev":%d,"principal":"oidc:https://idp.example/#alice","task_id":"tsk_%d",`+
		`"time":"2026-01-01T00:00:%02dZ","type":"action.authorized","v":2}`,
		i%3, h, i, i%17, sha256.Sum256([]byte("policy")), i-1, i/500, i%60))
}

// testLeavesAcrossSpans commits a log of several thousand leaves in
// batches cut where a store that keeps leaves against the leaves before
// them (internal/store/leafenc) has its edges: a span's start, the leaves
// its dictionary is made of, a batch holding some of them and starting
// after others. Every read, on the handle that wrote and on a new one, from
// any start, gives back the exact leaves.
func testLeavesAcrossSpans(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	const span = leafenc.SpanSize
	n := uint64(2*span + 300)
	want := make([][]byte, n)
	for i := range want {
		want[i] = callLeaf(uint64(i))
	}
	// Every third leaf has a policy input of its own.
	input := func(i uint64) []byte {
		return bytes.Replace(PolicyInput, []byte(`"action"`), []byte(fmt.Sprintf(`"action","n":%d`, i)), 1)
	}
	cuts := []uint64{0, 1, 6, span - 96, span - 7, span - 3, span + 4, 2*span - 6, 2 * span, 2*span + 1, n}
	for i := 0; i+1 < len(cuts); i++ {
		start, end := cuts[i], cuts[i+1]
		b := &ledger.Batch{Start: start, Leaves: want[start:end], Tiles: map[ledger.TileID][]byte{},
			Checkpoint: &ledger.StoredCheckpoint{Size: end, Note: []byte(fmt.Sprintf("checkpoint %d\n", end))}}
		for i := start; i < end; i++ {
			if i%3 == 0 {
				b.Bodies = append(b.Bodies, ledger.Body{Index: i, Name: "input", Salt: []byte{byte(i)}, Data: input(i)})
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("commit [%d, %d): %v", start, end, err)
		}
	}
	check := func(t *testing.T, s ledger.Store, start, end uint64) {
		t.Helper()
		got, err := s.ReadLeaves(ctx, start, end)
		if err != nil {
			t.Fatalf("ReadLeaves(%d, %d): %v", start, end, err)
		}
		if len(got) != int(min(end, n)-start) {
			t.Fatalf("ReadLeaves(%d, %d): %d leaves", start, end, len(got))
		}
		for i, l := range got {
			if !bytes.Equal(l, want[start+uint64(i)]) {
				t.Fatalf("ReadLeaves(%d, %d): leaf %d is %.40q…, want %.40q…", start, end, start+uint64(i), l, want[start+uint64(i)])
			}
		}
	}
	ranges := [][2]uint64{{0, n}, {span - 9, span + 2}, {span - 8, span - 7}, {span - 1, span + 1}, {span, span + 1},
		{span + 5, span + 6}, {2*span - 2, 2*span + 10}, {2*span + 299, 2*span + 400}, {3, 2*span + 5}}
	for _, h := range []struct {
		name string
		s    ledger.Store
	}{{"writer", s}, {"new handle", open(t)}, {"another", open(t)}} {
		t.Run(h.name, func(t *testing.T) {
			for _, r := range ranges {
				check(t, h.s, r[0], r[1])
			}
			for _, start := range []uint64{0, span - 8, span - 5, span, span + 1, 2*span - 1, n - 1, n} {
				next := start
				err := h.s.ScanLeaves(ctx, start, func(i uint64, l []byte) error {
					if i != next || !bytes.Equal(l, want[i]) {
						return fmt.Errorf("leaf %d (want %d) is %.40q…", i, next, l)
					}
					next++
					return nil
				})
				if err != nil || next != n {
					t.Errorf("ScanLeaves(%d): %v, ended at %d of %d", start, err, next, n)
				}
			}
			for _, i := range []uint64{0, span - 3, span, 2*span + 3, n - 2} {
				if i%3 != 0 {
					continue
				}
				got, err := h.s.ReadBody(ctx, ledger.BodyRef{Index: i, Name: "input"})
				if err != nil || !bytes.Equal(got.Data, input(i)) {
					t.Errorf("ReadBody(%d): %.40q…, %v", i, got.Data, err)
				}
			}
			seen := 0
			err := h.s.ScanBodies(ctx, func(b ledger.Body) error {
				if b.Unreadable != nil || !bytes.Equal(b.Data, input(b.Index)) {
					return fmt.Errorf("body %d: %.40q…, %v", b.Index, b.Data, b.Unreadable)
				}
				seen++
				return nil
			})
			if err != nil || seen != int((n+2)/3) {
				t.Errorf("ScanBodies: %d bodies of %d, %v", seen, (n+2)/3, err)
			}
			if br, ok := h.s.(ledger.BodyBatchReader); ok {
				var idx []uint64
				for i := range n {
					if i%3 == 0 && (i < 4 || i%span < 8 || i%span > span-8 || i > n-4) {
						idx = append(idx, i)
					}
				}
				seen := 0
				err := br.ReadBodyBatch(ctx, "input", idx, func(b ledger.Body) error {
					if !bytes.Equal(b.Data, input(b.Index)) {
						return fmt.Errorf("body %d: %.40q…", b.Index, b.Data)
					}
					seen++
					return nil
				})
				if err != nil || seen != len(idx) {
					t.Errorf("ReadBodyBatch: %d bodies of %d, %v", seen, len(idx), err)
				}
			}
		})
	}
	// Many readers at once, each span's leaves read in a random order.
	r := open(t)
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 40; k++ {
				var b [8]byte
				rand.Read(b[:])
				i := (uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])) % n
				got, err := r.ReadLeaves(ctx, i, i+1)
				if err != nil || len(got) != 1 || !bytes.Equal(got[0], want[i]) {
					t.Errorf("concurrent ReadLeaves(%d): %d leaves, %v", i, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// CallEvent is the n-th of a task's tool calls, the call of PolicyInput:
// most of its leaf the same as the call before's, and much of its policy
// input the same as its leaf.
func CallEvent(n int) ledger.Event {
	return ledger.Event{Type: "action.authorized", TaskID: "tsk_3yq5lk2m7ezqv6ahb4xw2nrc7u",
		Principal: "oidc:https://login.example.com/#u-8841", Agent: "spiffe://corp.example/ns/agents/sa/reporter",
		PolicyVersion: "sha256:74162983d51dbdf373f08c529124468db5c7278b55e7f63a7208a5a243e30d1d",
		JTI:           "kQ2m9x7Lw0pT4vB8nR1sYg",
		Data:          json.RawMessage(fmt.Sprintf(`{"action_id":"act_%026d","operation":"read","resource":"s3://reports/2026/q3.pdf","tool":"reports.fetch"}`, n)),
		Bodies:        map[string][]byte{"input": bytes.Replace(PolicyInput, []byte(`"action"`), []byte(fmt.Sprintf(`"action","n":%d`, n)), 1)}}
}

// LeavesCompressed checks, in the database db of a store that holds
// CallEvent's first SpanSize+600 or more calls and nothing else, that the
// first span's leaves are kept as they are and the next span's compressed
// against its dictionary, in under a third of their bytes, and that the
// policy inputs past the first span are kept in fewer bytes against the
// span's leaves than against the fixed dictionary alone.
func LeavesCompressed(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	// Literal numbers rather than placeholders: the stores' dialects
	// write them differently.
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT CASE WHEN idx >= %d THEN 1 ELSE 0 END, enc, count(*), sum(length(leaf))
		FROM leaves GROUP BY 1, 2 ORDER BY 1, 2`, leafenc.SpanSize))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for rows.Next() {
		var later, enc, count, bytes int
		if err := rows.Scan(&later, &enc, &count, &bytes); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("span %d, encoding %d", later, enc)] = [2]int{count, bytes / count}
	}
	rows.Close()
	if c := got["span 0, encoding 0"][0]; c != leafenc.SpanSize {
		t.Errorf("span 0: %d leaves kept as they are, want all %d (%v)", c, leafenc.SpanSize, got)
	}
	plain, packed := got["span 0, encoding 0"][1], got["span 1, encoding 1"]
	t.Logf("leaves: %v", got)
	if packed[0] < 590 || packed[1] > plain/3 {
		t.Errorf("span 1: %d leaves compressed, %d bytes each; span 0 keeps %d bytes each (%v)", packed[0], packed[1], plain, got)
	}
	avg := func(cond string, enc int) int {
		var n int
		q := fmt.Sprintf(`SELECT CAST(avg(length(data)) AS INTEGER) FROM bodies WHERE %s AND enc = %d`, fmt.Sprintf(cond, leafenc.SpanSize), enc)
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	fixed, span := avg("idx < %d", bodyenc.Dict1), avg("idx >= %d", bodyenc.Dict1Span)
	t.Logf("policy inputs: %d bytes each against the fixed dictionary, %d against the span's", fixed, span)
	if span == 0 || span >= fixed {
		t.Errorf("policy inputs past the first span kept in %d bytes each, in span 0 in %d", span, fixed)
	}
}

// HoldsBatches checks that s holds exactly the leaves of Batch(0, n), read
// back in one call.
func HoldsBatches(t *testing.T, s ledger.Store, n uint64) {
	t.Helper()
	got, err := s.ReadLeaves(context.Background(), 0, n+5)
	if err != nil || len(got) != int(n) {
		t.Fatalf("ReadLeaves: %d leaves, %v", len(got), err)
	}
	for i, g := range got {
		if want := leafN(uint64(i)); !bytes.Equal(g, want) {
			t.Errorf("leaf %d: %q, want %q", i, g, want)
		}
	}
}
