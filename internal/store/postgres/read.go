package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/leafenc"
)

// Reading the log: tiles, leaves, checkpoints, bodies and metadata, each
// from the pool or, for a snapshot, from one transaction.

// ReadTile implements ledger.Store.
func (s *Store) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	return readTile(ctx, s.pool, id)
}

// ReadLeaves implements ledger.Store.
func (s *Store) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	return s.readLeaves(ctx, s.pool, start, end)
}

// readLeaves reads the leaves [start, end) through q, decoded
// (internal/store/leafenc).
func (s *Store) readLeaves(ctx context.Context, q querier, start, end uint64) ([][]byte, error) {
	if end <= start {
		return nil, nil
	}
	stored, err := storedLeaves(ctx, q, start, end)
	if err != nil {
		return nil, err
	}
	dc := s.dicts.Decoder()
	out := make([][]byte, len(stored))
	for i, r := range stored {
		if out[i], err = dc.LeafCopy(ctx, uint64(r.idx), r.leaf, int(r.enc)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// storedLeaves returns the rows of the leaves [start, end), as stored.
func storedLeaves(ctx context.Context, q querier, start, end uint64) ([]leafRow, error) {
	rows, err := q.Query(ctx, `SELECT idx, leaf, enc FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (leafRow, error) {
		var l leafRow
		return l, r.Scan(&l.idx, &l.leaf, &l.enc)
	})
}

// readRefs returns the stored leaves [start, end) of a span's dictionary,
// which must be kept as they are, or nil when the store does not hold them
// all (leafenc.RefReader).
func readRefs(ctx context.Context, q querier, start, end uint64) ([][]byte, error) {
	stored, err := storedLeaves(ctx, q, start, end)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(stored))
	for _, r := range stored {
		if uint64(r.idx) != start+uint64(len(out)) || r.enc != leafenc.Plain {
			return nil, fmt.Errorf("%w: leaf %d, of a span's dictionary, is stored with encoding %d", leafenc.ErrEncoding, r.idx, r.enc)
		}
		out = append(out, r.leaf)
	}
	if len(out) != int(end-start) {
		return nil, nil
	}
	return out, nil
}

// Pages of the scans: how many rows one query reads. A scan of a large
// ledger neither holds one query (or a snapshot's lock) for long nor, where
// it buffers a page, buffers much: bodies can be large, so their pages are
// smaller. (Variables, so that a test can make pages small.)
var (
	scanPage = 4096
	bodyPage = 256
)

// paged calls fn for every row of a keyset-paged scan. read runs one
// page's query, of up to limit rows after the row given (from is the one
// before the first), and hands each row to each. With a lock, the lock is
// held while a page is read and the page is buffered, so that fn runs
// without it and may read through the same lock; without one, rows go to
// fn as they arrive.
func paged[T any](from T, limit int, read func(after T, each func(T) error) error, lock sync.Locker, fn func(T) error) error {
	for after := from; ; {
		n := 0
		var buf []T
		each := func(r T) error {
			n, after = n+1, r
			if lock == nil {
				return fn(r)
			}
			buf = append(buf, r)
			return nil
		}
		if lock != nil {
			lock.Lock()
		}
		err := read(after, each)
		if lock != nil {
			lock.Unlock()
		}
		if err != nil {
			return err
		}
		for _, r := range buf {
			if err := fn(r); err != nil {
				return err
			}
		}
		if n < limit {
			return nil
		}
	}
}

// queryRows runs a page's query, LIMIT as its last argument, and hands
// each row, scanned by scan, to each.
func queryRows[T any](ctx context.Context, q querier, limit int, scan func(pgx.Rows) (T, error), each func(T) error, sql string, args ...any) error {
	rows, err := q.Query(ctx, sql, append(args, limit)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return err
		}
		if err := each(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// leafRow is one row of the leaves table: the leaf as stored, and how.
type leafRow struct {
	idx  int64
	leaf []byte
	enc  int16
}

// ScanLeaves implements ledger.Store.
func (s *Store) ScanLeaves(ctx context.Context, start uint64, fn func(uint64, []byte) error) error {
	return s.scanLeaves(ctx, s.pool, start, nil, fn)
}

// scanLeaves calls fn with each stored leaf from start on, decoded as it
// is handed on: a dictionary it needs is read through the store's own
// connections (Store.refs), never q's.
func (s *Store) scanLeaves(ctx context.Context, q querier, start uint64, lock sync.Locker, fn func(uint64, []byte) error) error {
	read := func(after leafRow, each func(leafRow) error) error {
		return queryRows(ctx, q, scanPage, func(rows pgx.Rows) (leafRow, error) {
			var r leafRow
			return r, rows.Scan(&r.idx, &r.leaf, &r.enc)
		}, each, `SELECT idx, leaf, enc FROM leaves WHERE idx > $1 ORDER BY idx LIMIT $2`, after.idx)
	}
	dc := s.dicts.Decoder()
	return paged(leafRow{idx: int64(start) - 1}, scanPage, read, lock, func(r leafRow) error {
		leaf, err := dc.Leaf(ctx, uint64(r.idx), r.leaf, int(r.enc))
		if err != nil {
			return err
		}
		return fn(uint64(r.idx), leaf)
	})
}

// LatestCheckpoint implements ledger.Store.
func (s *Store) LatestCheckpoint(ctx context.Context) (ledger.StoredCheckpoint, error) {
	return latestCheckpoint(ctx, s.pool)
}

func latestCheckpoint(ctx context.Context, q querier) (ledger.StoredCheckpoint, error) {
	var cp ledger.StoredCheckpoint
	var n int64
	err := q.QueryRow(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&n, &cp.Note)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, ledger.ErrNotFound
	}
	cp.Size = uint64(n)
	return cp, err
}

// ScanCheckpoints implements ledger.Store.
func (s *Store) ScanCheckpoints(ctx context.Context, fn func(ledger.StoredCheckpoint) error) error {
	return scanCheckpoints(ctx, s.pool, nil, fn)
}

func scanCheckpoints(ctx context.Context, q querier, lock sync.Locker, fn func(ledger.StoredCheckpoint) error) error {
	read := func(after checkpointRow, each func(checkpointRow) error) error {
		return queryRows(ctx, q, scanPage, func(rows pgx.Rows) (checkpointRow, error) {
			var r checkpointRow
			return r, rows.Scan(&r.size, &r.Note)
		}, each, `SELECT size, note FROM checkpoints WHERE size > $1 ORDER BY size LIMIT $2`, after.size)
	}
	// An empty log has a checkpoint of size 0: the scan starts before it.
	return paged(checkpointRow{size: -1}, scanPage, read, lock, func(r checkpointRow) error {
		r.Size = uint64(r.size)
		return fn(r.StoredCheckpoint)
	})
}

// checkpointRow is one row of a checkpoint scan: the checkpoint, and its
// size as stored.
type checkpointRow struct {
	ledger.StoredCheckpoint
	size int64
}

// ReadBody implements ledger.Store.
func (s *Store) ReadBody(ctx context.Context, ref ledger.BodyRef) (ledger.Body, error) {
	return s.readBody(ctx, s.pool, ref)
}

func (s *Store) readBody(ctx context.Context, q querier, ref ledger.BodyRef) (ledger.Body, error) {
	b := ledger.Body{Index: ref.Index, Name: ref.Name}
	var enc int16
	err := q.QueryRow(ctx, `SELECT salt, data, enc FROM bodies WHERE idx = $1 AND name = $2`, int64(ref.Index), ref.Name).Scan(&b.Salt, &b.Data, &enc)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, ledger.ErrNotFound
	}
	if err != nil {
		return b, err
	}
	b.Data, err = s.dicts.Decoder().Body(ctx, ref.Index, b.Data, int(enc))
	return b, err
}

// ScanBodies implements ledger.Store.
func (s *Store) ScanBodies(ctx context.Context, fn func(ledger.Body) error) error {
	return s.scanBodies(ctx, s.pool, nil, fn)
}

// scanBodies calls fn with each stored body, decoded as it is handed on.
func (s *Store) scanBodies(ctx context.Context, q querier, lock sync.Locker, fn func(ledger.Body) error) error {
	read := func(after bodyRow, each func(bodyRow) error) error {
		return queryRows(ctx, q, bodyPage, func(rows pgx.Rows) (bodyRow, error) {
			var r bodyRow
			return r, rows.Scan(&r.idx, &r.Name, &r.Salt, &r.Data, &r.enc)
		}, each, `SELECT idx, name, salt, data, enc FROM bodies WHERE (idx, name) > ($1, $2) ORDER BY idx, name LIMIT $3`, after.idx, after.Name)
	}
	dc := s.dicts.Decoder()
	return paged(bodyRow{idx: -1}, bodyPage, read, lock, func(r bodyRow) error {
		r.Index = uint64(r.idx)
		var err error
		if r.Data, err = dc.Body(ctx, r.Index, r.Data, int(r.enc)); err != nil {
			r.Unreadable = err
		}
		return fn(r.Body)
	})
}

var _ ledger.BodyBatchReader = (*Store)(nil)

// bodyBatch is how many bodies one query of ReadBodyBatch asks for.
const bodyBatch = 5000

// ReadBodyBatch implements ledger.BodyBatchReader: one query per bodyBatch
// indexes.
func (s *Store) ReadBodyBatch(ctx context.Context, name string, indexes []uint64, fn func(ledger.Body) error) error {
	for len(indexes) > 0 {
		n := min(len(indexes), bodyBatch)
		idx := make([]int64, n)
		for i, v := range indexes[:n] {
			idx[i] = int64(v)
		}
		rows, err := s.pool.Query(ctx, `SELECT idx, salt, data, enc FROM bodies WHERE name = $1 AND idx = ANY($2) ORDER BY idx`, name, idx)
		dc := s.dicts.Decoder()
		if err != nil {
			return err
		}
		for rows.Next() {
			b := ledger.Body{Name: name}
			var i int64
			var enc int16
			if err := rows.Scan(&i, &b.Salt, &b.Data, &enc); err != nil {
				rows.Close()
				return err
			}
			b.Index = uint64(i)
			if b.Data, err = dc.Body(ctx, b.Index, b.Data, int(enc)); err != nil {
				rows.Close()
				return fmt.Errorf("body %s of %d: %w", name, i, err)
			}
			if err := fn(b); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		indexes = indexes[n:]
	}
	return nil
}

// bodyRow is one row of a body scan: the body, and its index and
// encoding as stored.
type bodyRow struct {
	ledger.Body
	idx int64
	enc int16
}

// Meta implements ledger.Store.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	return meta(ctx, s.pool, key)
}

func meta(ctx context.Context, q querier, key string) (string, error) {
	var v string
	err := q.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ledger.ErrNotFound
	}
	return v, err
}

// InitMeta implements ledger.Store.
func (s *Store) InitMeta(ctx context.Context, key, value string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM meta WHERE key = $1 LIMIT 1`, key, value).Scan(&v)
	return v, err
}
