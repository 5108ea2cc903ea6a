package tilerun

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/writhq/writ/internal/ledger"
)

// hashesAt are the stand-in hashes of tile id's first n nodes: distinct
// per position, so that a run stored in the wrong place shows.
func hashesAt(id ledger.TileID, n int) []byte {
	b := make([]byte, n*ledger.HashSize)
	for i := range n {
		b[i*ledger.HashSize] = byte(i)
		b[i*ledger.HashSize+1] = byte(id.Level)
		b[i*ledger.HashSize+2] = byte(id.Index)
	}
	return b
}

// tilesOf are the tiles a commit of the leaves [start, end) names, each
// with all its hashes, as the ledger hands them over.
func tilesOf(start, end uint64) map[ledger.TileID][]byte {
	out := map[ledger.TileID][]byte{}
	for level := uint64(0); level < 3; level++ {
		lo, hi := start>>(ledger.TileHeight*level), end>>(ledger.TileHeight*level)
		if hi == lo {
			continue
		}
		for idx := lo / ledger.TileWidth; idx <= (hi-1)/ledger.TileWidth; idx++ {
			id := ledger.TileID{Level: level, Index: idx}
			out[id] = hashesAt(id, int(min(hi-idx*ledger.TileWidth, ledger.TileWidth)))
		}
	}
	return out
}

// TestSplitThenAssemble grows a log by batches of every size, keeps what
// Split says as a store would, and reads every tile back whole after each
// batch.
func TestSplitThenAssemble(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type key struct {
		id  ledger.TileID
		pos int
	}
	full := map[ledger.TileID][]byte{}
	runs := map[key][]byte{}
	var size uint64
	for size < 3*ledger.TileWidth*ledger.TileWidth/2 {
		n := uint64(1 + r.IntN(700))
		if r.IntN(4) == 0 {
			n = 1
		}
		b := &ledger.Batch{Start: size, Tiles: tilesOf(size, size+n)}
		f, rs := Split(b)
		for _, row := range f {
			full[row.ID] = row.Hashes
			for k := range runs {
				if k.id == row.ID {
					delete(runs, k)
				}
			}
		}
		for _, row := range rs {
			if _, dup := runs[key{row.ID, row.Pos}]; dup {
				t.Fatalf("size %d: a second run of %v at %d", size, row.ID, row.Pos)
			}
			runs[key{row.ID, row.Pos}] = row.Hashes
		}
		size += n
		for id, want := range tilesOf(0, size) {
			a := newAssembler(id)
			if h, ok := full[id]; ok {
				a.takeFull(h)
			}
			for pos := 0; pos < ledger.TileWidth; pos++ {
				if h, ok := runs[key{id, pos}]; ok {
					a.run(pos, h)
				}
			}
			got, err := a.tile()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("size %d: tile %v read as %d bytes (%v), want %d", size, id, len(got), err, len(want))
			}
		}
	}
}

func TestAssemblerRefusesBrokenRuns(t *testing.T) {
	id := ledger.TileID{}
	h := hashesAt(id, 3)
	for name, feed := range map[string]func(*assembler){
		"a gap":               func(a *assembler) { a.run(0, h[:32]); a.run(2, h[64:]) },
		"an overlap":          func(a *assembler) { a.run(0, h[:64]); a.run(1, h[32:]) },
		"not from 0":          func(a *assembler) { a.run(1, h[32:]) },
		"a partial hash":      func(a *assembler) { a.run(0, h[:40]) },
		"an empty run":        func(a *assembler) { a.run(0, nil) },
		"a full tile's worth": func(a *assembler) { a.run(0, make([]byte, FullBytes)) },
	} {
		a := newAssembler(id)
		feed(a)
		if b, err := a.tile(); err == nil || errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("%s: read as %d bytes, %v", name, len(b), err)
		}
	}
	if _, err := newAssembler(id).tile(); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("nothing stored: %v", err)
	}
}

// FuzzAssembler: whatever runs a store returns, the assembler answers a
// tile made of them in order from position 0, or an error; never a panic.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2})
	f.Add([]byte{0, 3, 2, 1})
	f.Fuzz(func(t *testing.T, spec []byte) {
		a := newAssembler(ledger.TileID{Level: 1, Index: 2})
		next := 0
		contiguous := true
		for i := 0; i+1 < len(spec); i += 2 {
			pos, n := int(spec[i]), int(spec[i+1])
			if pos != next || n == 0 || next+n >= ledger.TileWidth {
				contiguous = false
			}
			a.run(pos, make([]byte, n*ledger.HashSize))
			next += n
		}
		b, err := a.tile()
		if contiguous && len(spec) >= 2 && (err != nil || len(b) != next*ledger.HashSize) {
			t.Fatalf("contiguous runs read as %d bytes, %v", len(b), err)
		}
		if !contiguous && err == nil {
			t.Fatalf("broken runs read as %d bytes", len(b))
		}
	})
}
