// Package tilerun is how both stores keep a tile that is not yet full: as
// the runs of hashes each commit added to it, keyed by the position of the
// run's first hash, rather than rewritten whole at every commit. A full
// tile is one row, written once; the commit that fills a tile writes that
// row and deletes the tile's runs. A read puts a partial tile's runs
// together, and refuses one whose runs do not follow each other from
// position 0, rather than serve it short.
package tilerun

import (
	"fmt"

	"github.com/writhq/writ/internal/ledger"
)

// FullBytes is the size of a full tile's hashes.
const FullBytes = ledger.TileWidth * ledger.HashSize

// Row is a tile to store: a full one (Pos 0, FullBytes of hashes), or the
// hashes a commit added to a partial one, the first of them at Pos.
type Row struct {
	ID     ledger.TileID
	Pos    int
	Hashes []byte
}

// Split sorts the tiles of b into the full tiles to write and the runs
// its commit adds to partial ones: the hashes of each partial tile past
// those it held when the log had b.Start leaves.
func Split(b *ledger.Batch) (full, runs []Row) {
	for id, h := range b.Tiles {
		if len(h) == FullBytes {
			full = append(full, Row{ID: id, Hashes: h})
			continue
		}
		w := int(ledger.TileHashes(b.Start, id)) // what the store holds already
		if w*ledger.HashSize >= len(h) {
			continue // nothing new (a tile is named only when it grew)
		}
		runs = append(runs, Row{ID: id, Pos: w, Hashes: h[w*ledger.HashSize:]})
	}
	return full, runs
}

// assembler puts a tile together from what one read returned: its row if
// it is full, else its runs in order of position.
type assembler struct {
	id     ledger.TileID
	b      []byte
	full   bool
	broken error
}

// newAssembler starts the read of tile id.
func newAssembler(id ledger.TileID) *assembler { return &assembler{id: id} }

// takeFull takes the tile's full row.
func (a *assembler) takeFull(h []byte) { a.b, a.full = h, true }

// run takes the run at pos, which must follow the ones before it.
func (a *assembler) run(pos int, h []byte) {
	if a.full || a.broken != nil {
		return
	}
	if pos*ledger.HashSize != len(a.b) || len(h)%ledger.HashSize != 0 || len(h) == 0 || len(a.b)+len(h) >= FullBytes {
		a.broken = fmt.Errorf("tile %d/%d: a run of %d bytes at hash %d after %d hashes", a.id.Level, a.id.Index,
			len(h), pos, len(a.b)/ledger.HashSize)
		return
	}
	a.b = append(a.b, h...)
}

// Rows are what a store's read of a tile returns, each row (full, pos,
// hashes): the tile's full row first if there is one, then its runs by
// position. pgx.Rows and *sql.Rows both are.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Read puts tile id together from rows, which the caller closes.
func Read(id ledger.TileID, rows Rows) ([]byte, error) {
	a := newAssembler(id)
	for rows.Next() {
		var full bool
		var pos int64
		var h []byte
		if err := rows.Scan(&full, &pos, &h); err != nil {
			return nil, err
		}
		if full {
			a.takeFull(h)
		} else {
			a.run(int(pos), h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return a.tile()
}

// tile returns the tile's hashes, ledger.ErrNotFound when nothing of it is
// stored, or an error for runs that do not make a tile.
func (a *assembler) tile() ([]byte, error) {
	switch {
	case a.full:
		return a.b, nil
	case a.broken != nil:
		return nil, a.broken
	case len(a.b) == 0:
		return nil, ledger.ErrNotFound
	}
	return a.b, nil
}
