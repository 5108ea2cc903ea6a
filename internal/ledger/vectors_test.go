package ledger

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/proof"
)

// The vectors in testdata/tlog-tiles were produced by an independent
// tlog-tiles implementation from entries.jsonl. writ's tree, tiles, bundles
// and verifier must agree with them byte for byte.
const vectorDir = "testdata/tlog-tiles"

func vectorLeaves(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(vectorDir, "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1600 {
		t.Fatalf("entries.jsonl has %d entries, want 1600", len(out))
	}
	return out
}

func vectorVerifier(t *testing.T) (string, *Checkpoint, *Checkpoint) {
	t.Helper()
	vkey, err := os.ReadFile(filepath.Join(vectorDir, "verifier-key"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(string(vkey))
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string) *Checkpoint {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := OpenCheckpoint(b, v.Name(), v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &cp
	}
	return string(vkey), open("checkpoint.700"), open("checkpoint.1600")
}

// buildVectorLog sequences the vector leaves into a memStore in batches of
// uneven sizes, as group commit would, and returns the store and the roots
// at 700 and 1600.
func buildVectorLog(t *testing.T, leaves [][]byte) (*memStore, map[uint64][]byte) {
	t.Helper()
	s := newMemStore()
	tr := newTree()
	roots := map[uint64][]byte{}
	// Uneven batches that add up to 700, then batches of 333.
	i := 0
	for _, n := range []int{1, 2, 97, 256, 300, 44} {
		b := &Batch{Start: tr.size()}
		for k := 0; k < n; k++ {
			if err := tr.appendLeafHash(LeafHash(leaves[i])); err != nil {
				t.Fatal(err)
			}
			b.Leaves = append(b.Leaves, leaves[i])
			i++
		}
		b.Tiles = tr.takeDirty()
		if err := s.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := tr.root()
	roots[700] = r
	for i < len(leaves) {
		b := &Batch{Start: tr.size()}
		for ; i < len(leaves) && len(b.Leaves) < 333; i++ {
			tr.appendLeafHash(LeafHash(leaves[i]))
			b.Leaves = append(b.Leaves, leaves[i])
		}
		b.Tiles = tr.takeDirty()
		if err := s.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	r, _ = tr.root()
	roots[1600] = r
	return s, roots
}

func TestVectorsRoots(t *testing.T) {
	leaves := vectorLeaves(t)
	_, cp700, cp1600 := vectorVerifier(t)
	_, roots := buildVectorLog(t, leaves)
	if !bytes.Equal(roots[700], cp700.Root) {
		t.Errorf("root of 700 = %x, checkpoint says %x", roots[700], cp700.Root)
	}
	if !bytes.Equal(roots[1600], cp1600.Root) {
		t.Errorf("root of 1600 = %x, checkpoint says %x", roots[1600], cp1600.Root)
	}
}

func TestVectorsTilesByteForByte(t *testing.T) {
	ctx := context.Background()
	s, _ := buildVectorLog(t, vectorLeaves(t))
	n := 0
	err := filepath.Walk(filepath.Join(vectorDir, "log", "tile"), func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(vectorDir, "log"), path)
		tp, err := ParseTilePath(filepath.ToSlash(rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if tp.String() != filepath.ToSlash(rel) {
			t.Errorf("path %s formats back as %s", rel, tp)
		}
		want, _ := os.ReadFile(path)
		var got []byte
		if tp.Entries {
			got, err = ReadEntryBundle(ctx, s, 1600, tp)
		} else {
			got, err = ReadTile(ctx, s, 1600, tp)
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: writ's bytes differ from the vector (%d vs %d bytes)", rel, len(got), len(want))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 18 {
		t.Fatalf("compared only %d tiles", n)
	}
}

func TestVectorsProofs(t *testing.T) {
	ctx := context.Background()
	leaves := vectorLeaves(t)
	s, _ := buildVectorLog(t, leaves)
	_, cp700, cp1600 := vectorVerifier(t)
	cons, err := ConsistencyProof(ctx, s.ReadTile, 700, 1600)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(hasher, 700, 1600, cons, cp700.Root, cp1600.Root); err != nil {
		t.Errorf("consistency 700 -> 1600: %v", err)
	}
	for _, idx := range []uint64{0, 1, 255, 256, 699, 1000, 1599} {
		for _, cp := range []*Checkpoint{cp700, cp1600} {
			if idx >= cp.Size {
				continue
			}
			p, err := InclusionProof(ctx, s.ReadTile, idx, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(hasher, idx, cp.Size, LeafHash(leaves[idx]), p, cp.Root); err != nil {
				t.Errorf("inclusion of %d in %d: %v", idx, cp.Size, err)
			}
		}
	}
}

func TestVectorsTamperedCopiesRejected(t *testing.T) {
	leaves := vectorLeaves(t)
	vkey, _, cp1600 := vectorVerifier(t)
	v, _ := NewVerifier(vkey)
	signed, _ := os.ReadFile(filepath.Join(vectorDir, "checkpoint.1600"))
	// Any changed byte of the checkpoint breaks its signature or its parse.
	for i := range signed {
		bad := bytes.Clone(signed)
		bad[i] ^= 0x01
		if _, err := OpenCheckpoint(bad, v.Name(), v); err == nil {
			t.Fatalf("checkpoint with byte %d flipped was accepted", i)
		}
	}
	// Any changed byte of a tile or bundle no longer yields the signed root.
	if rootFromFiles(t, leaves, "", nil) != string(cp1600.Root) {
		t.Fatal("the untouched vector files do not give the signed root")
	}
	for _, rel := range []string{"tile/0/003", "tile/entries/004", "tile/1/000.p/6"} {
		want, _ := os.ReadFile(filepath.Join(vectorDir, "log", rel))
		for _, i := range []int{0, len(want) / 2, len(want) - 1} {
			bad := bytes.Clone(want)
			bad[i] ^= 0x80
			if rootFromFiles(t, leaves, rel, bad) == string(cp1600.Root) {
				t.Errorf("%s with byte %d flipped still gives the signed root", rel, i)
			}
		}
	}
}

// rootFromFiles recomputes the root of 1600 from the vector files as a client
// would, with one file replaced.
func rootFromFiles(t *testing.T, leaves [][]byte, replaced string, data []byte) string {
	t.Helper()
	read := func(rel string) []byte {
		if rel == replaced {
			return data
		}
		b, err := os.ReadFile(filepath.Join(vectorDir, "log", rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Level 0 from the bundles (leaf data) or the hash tiles, level 1 from its tile.
	var hashes [][]byte
	for _, rel := range []string{"000", "001", "002", "003", "004", "005", "006.p/64"} {
		if replaced == "tile/entries/"+rel {
			ls, err := DecodeBundle(read("tile/entries/" + rel))
			if err != nil {
				return ""
			}
			tile := make([]byte, 0, len(ls)*HashSize)
			for _, l := range ls {
				tile = append(tile, LeafHash(l)...)
			}
			hashes = append(hashes, tile)
			continue
		}
		hashes = append(hashes, read("tile/0/"+rel))
	}
	level1 := read("tile/1/000.p/6")
	rng := rangeFactory.NewEmptyRange(0)
	for i := 0; i < 6; i++ {
		if !bytes.Equal(subtreeRoot(hashes[i]), level1[i*HashSize:(i+1)*HashSize]) {
			return "" // a client checks tile hashes against the level above
		}
	}
	for _, tile := range hashes {
		for off := 0; off+HashSize <= len(tile); off += HashSize {
			rng.Append(tile[off:off+HashSize], nil)
		}
	}
	if rng.End() != 1600 {
		return ""
	}
	r, _ := rng.GetRootHash(nil)
	return string(r)
}
