// Package sqlite is writ's embedded store: one SQLite database file in WAL
// mode with synchronous=FULL, so that a committed transaction survives a
// crash or power loss. It implements ledger.Store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/store/leafenc"
	"github.com/writhq/writ/internal/store/tilerun"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file's name inside a data directory.
const FileName = "writ.db"

// Store is a SQLite-backed store. Writes go through one connection; reads use
// a pool of their own, which WAL mode lets run beside a write.
type Store struct {
	w *sql.DB
	r *sql.DB
	// refs reads the leaves of a span's dictionary for a read that is
	// holding a connection of r (leaves.go).
	refs *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // multi-row inserts, prepared once on w

	// Statements every commit runs, prepared once at Open on w.
	sizeStmt, tileStmt, tileRunStmt, tileRunsDoneStmt, checkpointStmt, eraseStmt *sql.Stmt
	claimStmt                                                                    *sql.Stmt

	// DPoP proof claims waiting for the claim loop (proofs.go).
	claims     chan *proofClaim
	stopClaims chan struct{}
	claimsDone chan struct{}

	// dicts are the leaf dictionaries of the spans last used (leaves.go).
	dicts *leafenc.Cache

	// files checks, after each commit, that the database is still the
	// file opened (identity.go).
	files *files

	stopCheckpointer chan struct{}
	checkpointerDone chan struct{}
	closeOnce        sync.Once
	closeErr         error
}

var (
	_ ledger.Store           = (*Store)(nil)
	_ ledger.BodyBatchReader = (*Store)(nil)
)

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "wal_autocheckpoint(0)", "temp_store(MEMORY)",
		fmt.Sprintf("journal_size_limit(%d)", journalSizeLimit)} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	refs, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	refs.SetMaxOpenConns(2)
	fs, err := openFiles(path)
	if err != nil {
		w.Close()
		r.Close()
		refs.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	s := &Store{w: w, r: r, refs: refs, stmts: map[string]*sql.Stmt{}, files: fs,
		claims: make(chan *proofClaim, maxClaimBatch), stopClaims: make(chan struct{}), claimsDone: make(chan struct{}),
		stopCheckpointer: make(chan struct{}), checkpointerDone: make(chan struct{})}
	s.dicts = leafenc.NewCache(func(ctx context.Context, start, end uint64) ([][]byte, error) {
		return readRefs(ctx, refs, start, end)
	})
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.sizeStmt, `SELECT COALESCE(MAX(idx)+1, 0) FROM leaves`},
		{&s.tileStmt, `INSERT INTO tiles(level, idx, hashes) VALUES (?, ?, ?)
			 ON CONFLICT(level, idx) DO UPDATE SET hashes = excluded.hashes`},
		{&s.tileRunStmt, `INSERT INTO tile_parts(level, idx, pos, hashes) VALUES (?, ?, ?, ?)`},
		{&s.tileRunsDoneStmt, `DELETE FROM tile_parts WHERE level = ? AND idx = ?`},
		{&s.checkpointStmt, `INSERT OR IGNORE INTO checkpoints(size, note) VALUES (?, ?)`},
		{&s.eraseStmt, `DELETE FROM bodies WHERE idx = ? AND name = ?`},
		{&s.claimStmt, `INSERT INTO dpop_proofs(key, until) VALUES (?, ?)
			 ON CONFLICT(key) DO UPDATE SET until = excluded.until WHERE dpop_proofs.until < ?3
			 RETURNING 1`},
	} {
		if *p.dst, err = w.PrepareContext(ctx, p.q); err != nil {
			fs.close()
			w.Close()
			r.Close()
			refs.Close()
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
	}
	go s.checkpointer()
	go s.claimLoop()
	return s, nil
}

// Close closes the database. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopClaims)
		<-s.claimsDone
		close(s.stopCheckpointer)
		<-s.checkpointerDone
		s.mu.Lock()
		for _, st := range s.stmts {
			st.Close()
		}
		for _, st := range []*sql.Stmt{s.sizeStmt, s.tileStmt, s.tileRunStmt, s.tileRunsDoneStmt, s.checkpointStmt, s.eraseStmt, s.claimStmt} {
			if st != nil {
				st.Close()
			}
		}
		s.mu.Unlock()
		s.closeErr = errors.Join(s.r.Close(), s.refs.Close(), s.w.Close())
		s.files.close()
	})
	return s.closeErr
}

// rowsPerInsert is the most rows one INSERT statement carries: per-statement
// overhead, not SQLite's own work, dominates small rows.
const rowsPerInsert = 64

// prepareInserts makes sure the statements insertRows will need for n rows
// exist. It must run outside a transaction.
func (s *Store) prepareInserts(ctx context.Context, table string, cols, n int) error {
	if n == 0 {
		return nil
	}
	if n >= rowsPerInsert {
		if _, err := s.insertStmt(ctx, table, cols, rowsPerInsert); err != nil {
			return err
		}
	}
	if r := n % rowsPerInsert; r > 0 {
		if _, err := s.insertStmt(ctx, table, cols, r); err != nil {
			return err
		}
	}
	return nil
}

// insertRows inserts rows of n columns into table with the statements
// prepareInserts made.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, table string, n int, rows [][]any) error {
	for len(rows) > 0 {
		k := min(len(rows), rowsPerInsert)
		st, err := s.insertStmt(ctx, table, n, k)
		if err != nil {
			return err
		}
		args := make([]any, 0, k*n)
		for _, r := range rows[:k] {
			args = append(args, r...)
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return err
		}
		rows = rows[k:]
	}
	return nil
}

func (s *Store) insertStmt(ctx context.Context, table string, cols, rows int) (*sql.Stmt, error) {
	key := fmt.Sprintf("%s/%d", table, rows)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[key]; ok {
		return st, nil
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	q := "INSERT INTO " + table + " VALUES " + strings.TrimSuffix(strings.Repeat(tuple+",", rows), ",")
	st, err := s.w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmts[key] = st
	return st, nil
}

// DB returns the write handle, for packages that keep their own tables
// (projections) in the same file and transaction discipline.
func (s *Store) DB() *sql.DB { return s.w }

// Dialect names the SQL flavour of DB, for the packages that keep tables
// of their own there: "sqlite".
func (s *Store) Dialect() string { return "sqlite" }

// Size implements ledger.Store.
func (s *Store) Size(ctx context.Context) (uint64, error) {
	return size(ctx, s.r)
}

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func size(ctx context.Context, q queryer) (uint64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM leaves`).Scan(&n); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// Commit implements ledger.Store: one IMMEDIATE transaction, fsynced at
// COMMIT by synchronous=FULL. Once the database file or its log was
// deleted or replaced under the store, it fails with ledger.ErrStoreGone
// (a commit that raced with that fails too, though SQLite wrote it: into
// a file that will not be read again).
func (s *Store) Commit(ctx context.Context, b *ledger.Batch) (err error) {
	if err := s.files.lostErr(); err != nil {
		return err
	}
	// Statements are prepared before the transaction takes the one write
	// connection.
	if err := s.prepareInserts(ctx, "leaves(idx, leaf, enc)", 3, len(b.Leaves)); err != nil {
		return err
	}
	if err := s.prepareInserts(ctx, "bodies(idx, name, salt, data, enc)", 5, len(b.Bodies)); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var n uint64
	if err := tx.StmtContext(ctx, s.sizeStmt).QueryRowContext(ctx).Scan(&n); err != nil {
		return err
	}
	if n != b.Start {
		return fmt.Errorf("store holds %d leaves, batch starts at %d: %w", n, b.Start, ledger.ErrConflict)
	}
	dicts := s.dicts.Commit(b.Start, b.Leaves, func(ctx context.Context, start, end uint64) ([][]byte, error) {
		return readRefs(ctx, tx, start, end)
	})
	leafRows := make([][]any, len(b.Leaves))
	for i := range b.Leaves {
		enc, data, err := dicts.Leaf(ctx, i)
		if err != nil {
			return err
		}
		leafRows[i] = []any{int64(b.Start) + int64(i), data, enc}
	}
	if err := s.insertRows(ctx, tx, "leaves(idx, leaf, enc)", 3, leafRows); err != nil {
		return err
	}
	bodyRows := make([][]any, len(b.Bodies))
	for i, body := range b.Bodies {
		enc, data, err := dicts.Body(ctx, body.Index, body.Data)
		if err != nil {
			return err
		}
		bodyRows[i] = []any{int64(body.Index), body.Name, body.Salt, data, enc}
	}
	if err := s.insertRows(ctx, tx, "bodies(idx, name, salt, data, enc)", 5, bodyRows); err != nil {
		return err
	}
	for _, ref := range b.Erase {
		if _, err := tx.StmtContext(ctx, s.eraseStmt).ExecContext(ctx, int64(ref.Index), ref.Name); err != nil {
			return err
		}
	}
	// Tiles as internal/store/tilerun keeps them. A run already there is
	// a conflict that fails the commit.
	full, runs := tilerun.Split(b)
	for _, r := range full {
		if _, err := tx.StmtContext(ctx, s.tileStmt).ExecContext(ctx, int64(r.ID.Level), int64(r.ID.Index), r.Hashes); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.tileRunsDoneStmt).ExecContext(ctx, int64(r.ID.Level), int64(r.ID.Index)); err != nil {
			return err
		}
	}
	for _, r := range runs {
		if _, err := tx.StmtContext(ctx, s.tileRunStmt).ExecContext(ctx, int64(r.ID.Level), int64(r.ID.Index), r.Pos, r.Hashes); err != nil {
			return err
		}
	}
	if cp := b.Checkpoint; cp != nil {
		if _, err := tx.StmtContext(ctx, s.checkpointStmt).ExecContext(ctx, int64(cp.Size), cp.Note); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	dicts.Done()
	return s.files.check()
}

// ReadTile implements ledger.Store.
// One statement reads the tile's row and its runs (internal/store/tilerun),
// so that a commit filling it meanwhile is seen whole or not at all.
func (s *Store) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT 1, 0, hashes FROM tiles WHERE level = ?1 AND idx = ?2
	  UNION ALL SELECT 0, pos, hashes FROM tile_parts WHERE level = ?1 AND idx = ?2
	  ORDER BY 1 DESC, 2`, int64(id.Level), int64(id.Index))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return tilerun.Read(id, rows)
}

// ReadLeaves implements ledger.Store.
func (s *Store) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	var out [][]byte
	err := s.scanLeaves(ctx, start, end, func(_ uint64, leaf []byte) error {
		out = append(out, append([]byte(nil), leaf...))
		return nil
	})
	return out, err
}

// ScanLeaves implements ledger.Store.
func (s *Store) ScanLeaves(ctx context.Context, start uint64, fn func(uint64, []byte) error) error {
	return s.scanLeaves(ctx, start, math.MaxInt64, fn)
}

// scanLeaves calls fn for the stored leaves [start, end) in index order,
// decoded; fn must not keep leaf.
func (s *Store) scanLeaves(ctx context.Context, start, end uint64, fn func(uint64, []byte) error) error {
	if start >= end || start > math.MaxInt64 {
		return nil
	}
	dc := s.dicts.Decoder()
	rows, err := s.r.QueryContext(ctx, `SELECT idx, leaf, enc FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(start), int64(min(end, math.MaxInt64)))
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		idx    int64
		stored sql.RawBytes
		enc    int
	)
	for rows.Next() {
		if err := rows.Scan(&idx, &stored, &enc); err != nil {
			return err
		}
		leaf, err := dc.Leaf(ctx, uint64(idx), stored, enc)
		if err != nil {
			return err
		}
		if err := fn(uint64(idx), leaf); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LatestCheckpoint implements ledger.Store.
func (s *Store) LatestCheckpoint(ctx context.Context) (ledger.StoredCheckpoint, error) {
	var cp ledger.StoredCheckpoint
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&n, &cp.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, ledger.ErrNotFound
	}
	cp.Size = uint64(n)
	return cp, err
}

// ScanCheckpoints implements ledger.Store.
func (s *Store) ScanCheckpoints(ctx context.Context, fn func(ledger.StoredCheckpoint) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT size, note FROM checkpoints ORDER BY size`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		var cp ledger.StoredCheckpoint
		if err := rows.Scan(&n, &cp.Note); err != nil {
			return err
		}
		cp.Size = uint64(n)
		if err := fn(cp); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ReadBody implements ledger.Store.
func (s *Store) ReadBody(ctx context.Context, ref ledger.BodyRef) (ledger.Body, error) {
	b := ledger.Body{Index: ref.Index, Name: ref.Name}
	var enc int
	err := s.r.QueryRowContext(ctx, `SELECT salt, data, enc FROM bodies WHERE idx = ? AND name = ?`, int64(ref.Index), ref.Name).Scan(&b.Salt, &b.Data, &enc)
	if errors.Is(err, sql.ErrNoRows) {
		return b, ledger.ErrNotFound
	}
	if err != nil {
		return b, err
	}
	b.Data, err = s.dicts.Decoder().Body(ctx, ref.Index, b.Data, enc)
	return b, err
}

// bodyBatch is how many bodies one query of ReadBodyBatch asks for.
const bodyBatch = 500

// ReadBodyBatch implements ledger.BodyBatchReader: one query per
// bodyBatch indexes.
func (s *Store) ReadBodyBatch(ctx context.Context, name string, indexes []uint64, fn func(ledger.Body) error) error {
	for len(indexes) > 0 {
		n := min(len(indexes), bodyBatch)
		args := make([]any, 0, n+1)
		args = append(args, name)
		for _, i := range indexes[:n] {
			args = append(args, int64(i))
		}
		q := `SELECT idx, salt, data, enc FROM bodies WHERE name = ? AND idx IN (?` + strings.Repeat(", ?", n-1) + `) ORDER BY idx`
		if err := s.scanBodyRows(ctx, name, fn, q, args...); err != nil {
			return err
		}
		indexes = indexes[n:]
	}
	return nil
}

func (s *Store) scanBodyRows(ctx context.Context, name string, fn func(ledger.Body) error, q string, args ...any) error {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	dc := s.dicts.Decoder()
	for rows.Next() {
		b := ledger.Body{Name: name}
		var idx int64
		var enc int
		if err := rows.Scan(&idx, &b.Salt, &b.Data, &enc); err != nil {
			return err
		}
		b.Index = uint64(idx)
		if b.Data, err = dc.Body(ctx, b.Index, b.Data, enc); err != nil {
			return fmt.Errorf("body %s of %d: %w", name, idx, err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanBodies implements ledger.Store.
func (s *Store) ScanBodies(ctx context.Context, fn func(ledger.Body) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT idx, name, salt, data, enc FROM bodies ORDER BY idx, name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	dc := s.dicts.Decoder()
	for rows.Next() {
		var b ledger.Body
		var idx int64
		var enc int
		if err := rows.Scan(&idx, &b.Name, &b.Salt, &b.Data, &enc); err != nil {
			return err
		}
		if b.Data, err = dc.Body(ctx, uint64(idx), b.Data, enc); err != nil {
			b.Unreadable = err
		}
		b.Index = uint64(idx)
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Meta implements ledger.Store.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ledger.ErrNotFound
	}
	return v, err
}

// InitMeta implements ledger.Store.
func (s *Store) InitMeta(ctx context.Context, key, value string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)`, key, value); err != nil {
		return "", err
	}
	var v string
	err := s.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	return v, err
}
