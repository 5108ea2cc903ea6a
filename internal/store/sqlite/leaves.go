package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/writhq/writ/internal/store/leafenc"
)

// Leaves are kept compressed against their span's dictionary
// (internal/store/leafenc): the last leaves of the span before, kept as
// they are; bodies against the same leaves, then bodyenc's fixed
// dictionary (bodyenc.Dict1Span). The store's leafenc.Cache keeps the
// dictionaries of the spans last used; a read that needs one it has not
// got reads its leaves through a pool of its own (Store.refs), so that a
// scan holding a reader never waits for another.

type rowsQueryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// readRefs returns the stored leaves [start, end), which must be kept as
// they are, or nil when the store does not hold them all.
func readRefs(ctx context.Context, q rowsQueryer, start, end uint64) ([][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT idx, leaf, enc FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
			enc  int
		)
		if err := rows.Scan(&idx, &leaf, &enc); err != nil {
			return nil, err
		}
		if uint64(idx) != start+uint64(len(out)) || enc != leafenc.Plain {
			return nil, fmt.Errorf("%w: leaf %d, of a span's dictionary, is stored with encoding %d", leafenc.ErrEncoding, idx, enc)
		}
		out = append(out, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != int(end-start) {
		return nil, nil
	}
	return out, nil
}
