package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TileHeight is the tlog-tiles tile height: each tile holds up to 256 hashes.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	HashSize   = sha256.Size
)

var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// LeafHash returns the RFC 6962 hash of a leaf: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }

// TileID names a tile: tree level (0 for leaf hashes) and index at that level.
type TileID struct {
	Level uint64
	Index uint64
}

// tree is the in-memory right edge of the log: the compact range that gives
// the root, and the partial tile at each level. It is all the sequencer needs
// to append; everything to its left is immutable and lives in the store.
type tree struct {
	rng   *compact.Range
	edge  map[uint64][]byte // level -> hashes of the rightmost (partial) tile
	dirty map[TileID][]byte // changed tiles; nil value: the edge tile at that level
	// untracked skips dirty-tile bookkeeping (verification keeps no history).
	untracked bool
}

func newTree() *tree {
	return &tree{rng: rangeFactory.NewEmptyRange(0), edge: map[uint64][]byte{}, dirty: map[TileID][]byte{}}
}

func (t *tree) size() uint64 { return t.rng.End() }

// appendLeafHash adds one leaf hash, recording every node at a tile boundary
// level (heights 0, 8, 16, …) in the edge tiles.
func (t *tree) appendLeafHash(h []byte) error {
	return t.rng.Append(h, t.visit)
}

func (t *tree) visit(id compact.NodeID, hash []byte) {
	if id.Level%TileHeight != 0 {
		return
	}
	level := uint64(id.Level / TileHeight)
	tid := TileID{Level: level, Index: id.Index / TileWidth}
	pos := int(id.Index % TileWidth)
	cur := t.edge[level]
	if pos == 0 {
		// The previous tile at this level, if any, is full and leaves the
		// edge; if this batch changed it, keep it for the next store write.
		prev := TileID{Level: level, Index: tid.Index - 1}
		if _, ok := t.dirty[prev]; ok && len(cur) > 0 {
			t.dirty[prev] = cur
		}
		cur = nil
	}
	if len(cur) != pos*HashSize {
		// Cannot happen while the edge is consistent; tiles are append-only.
		panic(fmt.Sprintf("ledger: tile %d/%d out of step: have %d hashes, adding #%d", level, tid.Index, len(cur)/HashSize, pos))
	}
	t.edge[level] = append(cur, hash...)
	if !t.untracked {
		t.dirty[tid] = nil // nil: still the edge; contents taken from edge
	}
}

// root returns the Merkle tree hash of the whole log.
func (t *tree) root() ([]byte, error) {
	if t.size() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return t.rng.GetRootHash(nil)
}

// takeDirty returns the tiles changed since the last call, with their contents.
func (t *tree) takeDirty() map[TileID][]byte {
	out := make(map[TileID][]byte, len(t.dirty))
	for id, full := range t.dirty {
		if full == nil {
			full = append([]byte(nil), t.edge[id.Level]...)
		}
		out[id] = full
	}
	clear(t.dirty)
	return out
}

// clone returns an independent copy, for rolling back a failed batch.
func (t *tree) clone() *tree {
	c := &tree{edge: make(map[uint64][]byte, len(t.edge)), dirty: make(map[TileID][]byte, len(t.dirty))}
	r, err := rangeFactory.NewRange(t.rng.Begin(), t.rng.End(), cloneHashes(t.rng.Hashes()))
	if err != nil {
		panic(err) // the hashes came from a valid range
	}
	c.rng = r
	for l, h := range t.edge {
		c.edge[l] = append([]byte(nil), h...)
	}
	for id, full := range t.dirty {
		c.dirty[id] = full // completed tiles are never modified again
	}
	return c
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = append([]byte(nil), h...)
	}
	return out
}

// levelWidth is the number of nodes at tile level l in a tree of size n.
func levelWidth(n, l uint64) uint64 { return n >> (TileHeight * l) }

// TileReader reads one stored tile. It returns the tile's hashes, possibly
// more than a caller needs (tiles only grow), or ErrNotFound.
type TileReader func(ctx context.Context, id TileID) ([]byte, error)

// loadTree rebuilds the right edge of a tree of size n from the stored tiles.
func loadTree(ctx context.Context, n uint64, read TileReader) (*tree, error) {
	t := newTree()
	if n == 0 {
		return t, nil
	}
	var hashes [][]byte
	// Walk levels from the top so the compact range comes out left to right.
	top := uint64(0)
	for levelWidth(n, top+1) > 0 {
		top++
	}
	for l := int64(top); l >= 0; l-- {
		level := uint64(l)
		w := levelWidth(n, level) % TileWidth
		if w == 0 {
			continue
		}
		id := TileID{Level: level, Index: levelWidth(n, level) / TileWidth}
		data, err := read(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("loading edge tile %d/%d: %w", id.Level, id.Index, err)
		}
		if uint64(len(data)) < w*HashSize {
			return nil, fmt.Errorf("edge tile %d/%d has %d hashes, want %d", id.Level, id.Index, len(data)/HashSize, w)
		}
		data = data[:w*HashSize]
		t.edge[level] = append([]byte(nil), data...)
		// The compact range holds one perfect subtree per set bit of w.
		off := uint64(0)
		for b := bits.Len64(w) - 1; b >= 0; b-- {
			if w&(1<<b) == 0 {
				continue
			}
			cnt := uint64(1) << b
			hashes = append(hashes, subtreeRoot(data[off*HashSize:(off+cnt)*HashSize]))
			off += cnt
		}
	}
	r, err := rangeFactory.NewRange(0, n, hashes)
	if err != nil {
		return nil, err
	}
	t.rng = r
	return t, nil
}

// subtreeRoot hashes a power-of-two run of node hashes up to its root.
func subtreeRoot(flat []byte) []byte {
	n := len(flat) / HashSize
	level := make([][]byte, n)
	for i := range level {
		level[i] = flat[i*HashSize : (i+1)*HashSize]
	}
	for len(level) > 1 {
		next := make([][]byte, len(level)/2)
		for i := range next {
			next[i] = hasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = next
	}
	return append([]byte(nil), level[0]...)
}

// nodeHash returns the hash of the complete subtree with the given height and
// index, computed from the stored tiles.
func nodeHash(ctx context.Context, height uint, index uint64, read TileReader) ([]byte, error) {
	level := uint64(height / TileHeight)
	span := uint64(1) << (height % TileHeight)
	first := index * span // first node at the tile level
	id := TileID{Level: level, Index: first / TileWidth}
	data, err := read(ctx, id)
	if err != nil {
		return nil, err
	}
	lo, hi := (first%TileWidth)*HashSize, (first%TileWidth+span)*HashSize
	if uint64(len(data)) < hi {
		return nil, errors.New("tile too short for node")
	}
	return subtreeRoot(data[lo:hi]), nil
}
