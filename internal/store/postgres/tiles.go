package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/writhq/writ/internal/ledger"
)

// How tiles are kept. A full tile is one row of tiles, written once. A
// tile not yet full is kept in tile_parts as the runs of hashes that each
// commit added to it, keyed by the position of the run's first hash: a
// commit inserts the hashes it added, a few hundred bytes, where
// rewriting the whole tile (up to 8 KB, stored out of line) at every
// commit left a dead copy of it for vacuum each time. The commit that
// fills a tile writes it to tiles and deletes its runs. Reads assemble a
// partial tile from its runs, which must follow each other from position
// 0 without a gap.

// fullTile is the size of a full tile's hashes.
const fullTile = ledger.TileWidth * ledger.HashSize

// storedWidth is how many hashes tile id held when the log had size
// leaves: the ones the commit starting there need not write again.
func storedWidth(size uint64, id ledger.TileID) int {
	if id.Level >= 8 {
		return 0 // above any tree of 2^64 leaves
	}
	n, lo := size>>(ledger.TileHeight*id.Level), id.Index*ledger.TileWidth
	if n <= lo {
		return 0
	}
	return int(min(n-lo, ledger.TileWidth))
}

// queueTiles queues the statements that store b's tiles on q: full ones
// into tiles (their runs deleted), the hashes b added to a partial one as
// a run of tile_parts. A run already there is a conflict that fails the
// commit: the batch does not start where the store's tiles end.
func queueTiles(q *pgx.Batch, b *ledger.Batch) {
	var full, part struct {
		levels []int32
		idx    []int64
		pos    []int32
		hashes [][]byte
	}
	for id, h := range b.Tiles {
		if len(h) == fullTile {
			full.levels, full.idx, full.hashes = append(full.levels, int32(id.Level)), append(full.idx, int64(id.Index)), append(full.hashes, h)
			continue
		}
		w := storedWidth(b.Start, id)
		if w*ledger.HashSize >= len(h) {
			continue // nothing new (a tile is named only when it grew)
		}
		part.levels, part.idx = append(part.levels, int32(id.Level)), append(part.idx, int64(id.Index))
		part.pos, part.hashes = append(part.pos, int32(w)), append(part.hashes, h[w*ledger.HashSize:])
	}
	if len(full.levels) > 0 {
		q.Queue(`INSERT INTO tiles (level, idx, hashes) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])
			 ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, full.levels, full.idx, full.hashes)
		q.Queue(`DELETE FROM tile_parts WHERE (level, idx) IN (SELECT * FROM unnest($1::integer[], $2::bigint[]))`,
			full.levels, full.idx)
	}
	if len(part.levels) > 0 {
		q.Queue(`INSERT INTO tile_parts (level, idx, pos, hashes) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::integer[], $4::bytea[])`,
			part.levels, part.idx, part.pos, part.hashes)
	}
}

// readTile reads tile id through q: its row if it is full, else its runs
// put together. One statement reads both, so that a commit filling the
// tile meanwhile (its row written, its runs deleted) is seen whole or not
// at all.
func readTile(ctx context.Context, q querier, id ledger.TileID) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT true, 0, hashes FROM tiles WHERE level = $1 AND idx = $2
	  UNION ALL SELECT false, pos, hashes FROM tile_parts WHERE level = $1 AND idx = $2
	  ORDER BY 1 DESC, 2`, int32(id.Level), int64(id.Index))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var b []byte
	for rows.Next() {
		var full bool
		var pos int32
		var h []byte
		if err := rows.Scan(&full, &pos, &h); err != nil {
			return nil, err
		}
		if full {
			return h, nil
		}
		if int(pos)*ledger.HashSize != len(b) || len(h)%ledger.HashSize != 0 || len(b)+len(h) >= fullTile {
			return nil, fmt.Errorf("tile %d/%d: a run of %d bytes at hash %d after %d hashes", id.Level, id.Index, len(h), pos, len(b)/ledger.HashSize)
		}
		b = append(b, h...)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, ledger.ErrNotFound
	}
	return b, nil
}
