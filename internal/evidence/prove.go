package evidence

import (
	"context"
	"errors"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/writhq/writ/internal/ledger"
)

// prover builds inclusion proofs for many events of one tree size, reading
// each tile once and hashing each interior node once: neighbouring events
// share most of their proof nodes. Every proof it builds is checked against
// the signed root before it is used.
type prover struct {
	st    ledger.Store
	size  uint64
	tiles map[ledger.TileID][]byte
	nodes map[[2]uint64][]byte
}

func newProver(st ledger.Store, size uint64) *prover {
	return &prover{st: st, size: size, tiles: map[ledger.TileID][]byte{}, nodes: map[[2]uint64][]byte{}}
}

// inclusion returns the RFC 6962 inclusion proof of index.
func (p *prover) inclusion(ctx context.Context, index uint64) ([][]byte, error) {
	ns, err := proof.Inclusion(index, p.size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(ns.IDs))
	for i, id := range ns.IDs {
		h, err := p.node(ctx, id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return ns.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// node returns the hash of the complete subtree of the given height and
// index: the root of a run of hashes in the tile at the level below it.
func (p *prover) node(ctx context.Context, height uint, index uint64) ([]byte, error) {
	key := [2]uint64{uint64(height), index}
	if h, ok := p.nodes[key]; ok {
		return h, nil
	}
	level := uint64(height / ledger.TileHeight)
	span := uint64(1) << (height % ledger.TileHeight)
	first := index * span
	id := ledger.TileID{Level: level, Index: first / ledger.TileWidth}
	data, ok := p.tiles[id]
	if !ok {
		var err error
		if data, err = p.st.ReadTile(ctx, id); err != nil {
			return nil, err
		}
		p.tiles[id] = data
	}
	lo, hi := (first%ledger.TileWidth)*ledger.HashSize, (first%ledger.TileWidth+span)*ledger.HashSize
	if uint64(len(data)) < hi {
		return nil, errors.New("tile too short for node")
	}
	var h []byte
	if span == 1 {
		h = data[lo:hi]
	} else {
		// The two halves are nodes one level down, hashed (and kept) in turn.
		l, err := p.node(ctx, height-1, 2*index)
		if err != nil {
			return nil, err
		}
		r, err := p.node(ctx, height-1, 2*index+1)
		if err != nil {
			return nil, err
		}
		h = rfc6962.DefaultHasher.HashChildren(l, r)
	}
	p.nodes[key] = h
	return h, nil
}

// verifyInclusion checks a proof against a checkpoint whose signature has
// already been checked.
func verifyInclusion(cp ledger.Checkpoint, index uint64, leaf []byte, hashes [][]byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, ledger.LeafHash(leaf), hashes, cp.Root)
}
