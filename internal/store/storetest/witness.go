package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/witness"
)

// testWitness checks the witness.Store contract: cosignatures kept beside
// their checkpoints (the first of a witness for a checkpoint stands), the
// newest checkpoint meeting a quorum found across many, and witness states
// kept across a reopen.
func testWitness(t *testing.T, open func(*testing.T) ledger.Store) {
	ctx := context.Background()
	s := open(t)
	ws, ok := s.(witness.Store)
	if !ok {
		t.Fatalf("%T does not implement witness.Store", s)
	}
	// Checkpoints at sizes 1..150.
	for i := uint64(0); i < 150; i++ {
		if err := s.Commit(ctx, batch(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ws.NewestCosigned(ctx, []string{"a", "b"}, 1); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("NewestCosigned with none stored: %v, want ErrNotFound", err)
	}
	at := time.Unix(1_800_000_000, 0).UTC()
	cosign := func(size uint64, key string, sec int64) {
		t.Helper()
		c := witness.Cosignature{Size: size, Key: key, Time: at.Add(time.Duration(sec) * time.Second), Line: "\u2014 " + key + " sig"}
		if err := ws.SaveCosignature(ctx, c, witness.State{Key: key, Size: size, CosignedAt: c.Time}); err != nil {
			t.Fatal(err)
		}
	}
	// Both witnesses cosign size 3; then a alone cosigns 4..140, b alone 141..145.
	cosign(3, "a", 0)
	cosign(3, "b", 1)
	for n := uint64(4); n <= 140; n++ {
		cosign(n, "a", int64(n))
	}
	for n := uint64(141); n <= 145; n++ {
		cosign(n, "b", int64(n))
	}
	cosign(3, "a", 99) // a second cosignature of a checkpoint keeps the first
	for _, tc := range []struct {
		keys   []string
		quorum int
		want   uint64
	}{
		{[]string{"a", "b"}, 2, 3},
		{[]string{"a", "b"}, 1, 145},
		{[]string{"a"}, 1, 140},
		{[]string{"b", "c"}, 1, 145},
		{[]string{"a", "c"}, 2, 0},
		{[]string{"c"}, 1, 0},
	} {
		got, err := ws.NewestCosigned(ctx, tc.keys, tc.quorum)
		if tc.want == 0 {
			if !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("NewestCosigned(%v, %d) = %d, %v; want ErrNotFound", tc.keys, tc.quorum, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NewestCosigned(%v, %d) = %d, %v; want %d", tc.keys, tc.quorum, got, err, tc.want)
		}
	}
	w, err := witness.NewestWitnessed(ctx, ws, []string{"a", "b"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []witness.Cosignature{
		{Size: 3, Key: "a", Time: at, Line: "\u2014 a sig"},
		{Size: 3, Key: "b", Time: at.Add(time.Second), Line: "\u2014 b sig"},
	}
	if diff := cmp.Diff(want, w.Cosignatures); diff != "" {
		t.Errorf("cosignatures of size 3 (-want +got):\n%s", diff)
	}
	if string(w.Checkpoint.Note) != "checkpoint 3\n" || string(w.Note()) != "checkpoint 3\n\u2014 a sig\n\u2014 b sig\n" {
		t.Errorf("witnessed note %q", w.Note())
	}
	if _, err := ws.ReadCheckpoint(ctx, 999); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReadCheckpoint(999): %v, want ErrNotFound", err)
	}
	n := 0
	if err := ws.ScanCosignatures(ctx, func(c witness.Cosignature) error { n++; return nil }); err != nil || n != 2+137+5 {
		t.Errorf("ScanCosignatures: %d rows, %v", n, err)
	}

	// States are replaced whole and survive a reopen.
	ws2 := 7 * uint64(1)
	st := witness.State{Key: "a", URL: "http://w/", Size: 140, CosignedAt: at, Refusal: &witness.Refusal{
		At: at, Status: 422, Reason: witness.ReasonBadProof, CheckpointSize: 150, WitnessSize: &ws2, Detail: "bad proof"}}
	if err := ws.SaveWitnessState(ctx, st); err != nil {
		t.Fatal(err)
	}
	ws = open(t).(witness.Store)
	states, err := ws.WitnessStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]witness.State{st, {Key: "b", Size: 145, CosignedAt: at.Add(145 * time.Second)}}, states); diff != "" {
		t.Errorf("witness states after reopen (-want +got):\n%s", diff)
	}
}
