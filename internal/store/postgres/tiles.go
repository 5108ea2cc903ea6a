package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/tilerun"
)

// Tiles are kept as internal/store/tilerun says: a full tile is a row of
// tiles, a partial one its runs in tile_parts. Rewriting a partial tile
// whole (up to 8 KB, stored out of line) at every commit left a dead copy
// of it for vacuum each time.

// queueTiles queues the statements that store b's tiles on q. A run
// already there is a conflict that fails the commit: the batch does not
// start where the store's tiles end.
func queueTiles(q *pgx.Batch, b *ledger.Batch) {
	full, runs := tilerun.Split(b)
	if len(full) > 0 {
		levels, idx, hashes := make([]int32, len(full)), make([]int64, len(full)), make([][]byte, len(full))
		for i, r := range full {
			levels[i], idx[i], hashes[i] = int32(r.ID.Level), int64(r.ID.Index), r.Hashes
		}
		q.Queue(`INSERT INTO tiles (level, idx, hashes) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])
			 ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, levels, idx, hashes)
		q.Queue(`DELETE FROM tile_parts WHERE (level, idx) IN (SELECT * FROM unnest($1::integer[], $2::bigint[]))`,
			levels, idx)
	}
	if len(runs) > 0 {
		levels, idx, pos, hashes := make([]int32, len(runs)), make([]int64, len(runs)), make([]int32, len(runs)), make([][]byte, len(runs))
		for i, r := range runs {
			levels[i], idx[i], pos[i], hashes[i] = int32(r.ID.Level), int64(r.ID.Index), int32(r.Pos), r.Hashes
		}
		q.Queue(`INSERT INTO tile_parts (level, idx, pos, hashes) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::integer[], $4::bytea[])`,
			levels, idx, pos, hashes)
	}
}

// readTile reads tile id through q. One statement reads its row and its
// runs, so that a commit filling the tile meanwhile (its row written, its
// runs deleted) is seen whole or not at all.
func readTile(ctx context.Context, q querier, id ledger.TileID) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT true, 0, hashes FROM tiles WHERE level = $1 AND idx = $2
	  UNION ALL SELECT false, pos, hashes FROM tile_parts WHERE level = $1 AND idx = $2
	  ORDER BY 1 DESC, 2`, int32(id.Level), int64(id.Index))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return tilerun.Read(id, rows)
}
