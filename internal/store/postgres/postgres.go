// Package postgres is writ's shared store: the ledger in PostgreSQL, through
// github.com/jackc/pgx/v5. Several writ replicas can open the same database;
// appends are serialized by a row lock on the log's head, held only by the
// transaction that inserts a batch, and committed durably (PostgreSQL's
// synchronous_commit must stay on). It implements ledger.SharedStore.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/writhq/writ/internal/ledger"
)

// Store is a PostgreSQL-backed store.
type Store struct {
	pool    *pgxpool.Pool
	db      *sql.DB
	schema  string
	keyBase string
	channel string
	log     *slog.Logger

	wmu      sync.Mutex
	watchers map[chan struct{}]struct{}

	// Claims share one session (claim.go).
	cmu       sync.Mutex
	claimConn *pgxpool.Conn
	claimed   map[int64]bool

	// prunedProofs is when expired DPoP proofs were last deleted, in unix
	// nanoseconds (proofs.go).
	prunedProofs atomic.Int64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ ledger.SharedStore = (*Store)(nil)

// Options tunes Open.
type Options struct {
	// MaxConns is the most connections the pool opens. Default 16.
	MaxConns int32
	Logger   *slog.Logger
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), brings the schema up to date and starts listening for
// appends by other writers. Tables go in the connection's current schema
// (set search_path in the DSN to choose one).
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can echo the DSN, password included.
		return nil, errors.New("the PostgreSQL DSN is not a valid connection string (postgres://user@host:5432/db?sslmode=…)")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.MaxConns = o.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", redact(err))
	}
	s := &Store{pool: pool, log: o.Logger, watchers: map[chan struct{}]struct{}{}, claimed: map[int64]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.db = stdlib.OpenDBFromPool(pool)
	go s.listen()
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", redact(err))
	}
	defer conn.Release()
	var schema, db *string
	if err := conn.QueryRow(ctx, `SELECT current_schema(), current_database()`).Scan(&schema, &db); err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", redact(err))
	}
	if schema == nil {
		return errors.New("the PostgreSQL connection has no current schema: the schemas on its search_path do not exist")
	}
	s.schema, s.keyBase = *schema, *db+"/"+*schema
	h := fnv.New32a()
	h.Write([]byte(s.keyBase))
	s.channel = "writ_ledger_" + strconv.FormatUint(uint64(h.Sum32()), 16)
	var sync string
	if err := conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&sync); err != nil {
		return err
	}
	if sync == "off" {
		return errors.New("PostgreSQL synchronous_commit is off: a commit could be acknowledged and then lost; writ needs it on")
	}
	if err := migrate(ctx, conn.Conn(), s.LockKey("migrate")); err != nil {
		return fmt.Errorf("migrating the PostgreSQL schema: %w", redact(err))
	}
	return nil
}

// LockKey returns the advisory lock key for name, distinct per database and
// schema, so ledgers in different schemas never wait on each other.
func (s *Store) LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("writ/" + s.keyBase + "/" + name))
	return int64(h.Sum64())
}

// Close stops listening and closes the pool. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.cmu.Lock()
		if s.claimConn != nil {
			s.claimConn.Conn().Close(context.Background())
			s.claimConn.Release()
			s.claimConn = nil
		}
		s.cmu.Unlock()
		s.db.Close()
		s.pool.Close()
	})
	return nil
}

// DB returns a database/sql handle on the pool, for packages that keep
// their own tables (projections) beside the ledger.
func (s *Store) DB() *sql.DB { return s.db }

// Pool returns the connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema the tables are in.
func (s *Store) Schema() string { return s.schema }

// redact drops what a driver error might carry of the connection string.
func redact(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("cannot connect to the PostgreSQL server (is it running, and does the DSN name the right host, port, user and database?)")
	}
	return err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Size implements ledger.Store.
func (s *Store) Size(ctx context.Context) (uint64, error) { return size(ctx, s.pool) }

func size(ctx context.Context, q querier) (uint64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT size FROM log_head WHERE id = 1`).Scan(&n); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// Commit implements ledger.Store. The head row's update both checks the
// batch's start and takes the lock that serializes writers.
func (s *Store) Commit(ctx context.Context, b *ledger.Batch) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.write(ctx, tx, b)
	})
}

// Sequence implements ledger.SharedStore. The head's lock and the edge a
// writer needs to catch up come in one round trip (writ_lock_head); the
// batch's statements and the COMMIT in another. Only those two round trips
// and the commit's flush are spent holding the lock.
func (s *Store) Sequence(ctx context.Context, known uint64, stamp func(context.Context, ledger.LockedReader) (*ledger.Batch, error)) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			// A failed or abandoned transaction must not go back to the
			// pool open.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
				c.Close(rctx)
			}
			cancel()
		}
	}()
	r := &txReader{tx: c, edge: map[ledger.TileID][]byte{}}
	rows, err := c.Query(ctx, `SELECT o_size, o_cp_size, o_cp_age, o_level, o_idx, o_hashes FROM writ_lock_head($1)`, int64(known))
	if err != nil {
		return err
	}
	first := true
	for rows.Next() {
		var n, cpSize int64
		var cpAge float64
		var level *int32
		var idx *int64
		var hashes []byte
		if err := rows.Scan(&n, &cpSize, &cpAge, &level, &idx, &hashes); err != nil {
			rows.Close()
			return err
		}
		if first {
			r.size, first = uint64(n), false
			if cpSize >= 0 {
				r.cpSize, r.cpAge, r.cpKnown = uint64(cpSize), time.Duration(cpAge*float64(time.Second)), true
			}
		}
		if level != nil && idx != nil {
			r.edge[ledger.TileID{Level: uint64(*level), Index: uint64(*idx)}] = hashes
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if first {
		return errors.New("the log head is missing")
	}
	b, err := stamp(ctx, r)
	if err != nil || b == nil {
		return err
	}
	q := s.batchStatements(b, `SELECT writ_advance_head($1, $2, $3)`)
	q.Queue("COMMIT")
	res := c.SendBatch(ctx, q)
	var tag pgconn.CommandTag
	for range q.Len() {
		if tag, err = res.Exec(); err != nil {
			res.Close()
			return conflictOr(err, b.Start)
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	done = true
	if tag.String() != "COMMIT" {
		return fmt.Errorf("the batch's transaction ended in %s", tag)
	}
	return nil
}

// write adds b in tx: every statement goes in one round trip.
func (s *Store) write(ctx context.Context, tx pgx.Tx, b *ledger.Batch) error {
	q := s.batchStatements(b, `SELECT writ_advance_head($1, $2, $3)`)
	res := tx.SendBatch(ctx, q)
	for range q.Len() {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return conflictOr(err, b.Start)
		}
	}
	return res.Close()
}

// conflictOr maps writ_advance_head's refusal to ErrConflict.
func conflictOr(err error, start uint64) error {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "40001" {
		return fmt.Errorf("the store's size is not the batch's start %d: %w", start, ledger.ErrConflict)
	}
	return err
}

// batchStatements queues b's statements, the first being advance with the
// batch's start and end.
func (s *Store) batchStatements(b *ledger.Batch, advance string) *pgx.Batch {
	end := int64(b.Start) + int64(len(b.Leaves))
	cp := int64(-1)
	if b.Checkpoint != nil {
		cp = int64(b.Checkpoint.Size)
	}
	q := &pgx.Batch{}
	q.Queue(advance, int64(b.Start), end, cp)
	if len(b.Leaves) > 0 {
		idx := make([]int64, len(b.Leaves))
		for i := range idx {
			idx[i] = int64(b.Start) + int64(i)
		}
		q.Queue(`INSERT INTO leaves (idx, leaf) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, idx, b.Leaves)
	}
	if len(b.Bodies) > 0 {
		idx := make([]int64, len(b.Bodies))
		names := make([]string, len(b.Bodies))
		salts := make([][]byte, len(b.Bodies))
		data := make([][]byte, len(b.Bodies))
		for i, body := range b.Bodies {
			idx[i], names[i], salts[i], data[i] = int64(body.Index), body.Name, body.Salt, body.Data
		}
		q.Queue(`INSERT INTO bodies (idx, name, salt, data) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[])`,
			idx, names, salts, data)
	}
	if len(b.Erase) > 0 {
		idx := make([]int64, len(b.Erase))
		names := make([]string, len(b.Erase))
		for i, r := range b.Erase {
			idx[i], names[i] = int64(r.Index), r.Name
		}
		q.Queue(`DELETE FROM bodies WHERE (idx, name) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))`, idx, names)
	}
	if len(b.Tiles) > 0 {
		levels := make([]int32, 0, len(b.Tiles))
		idx := make([]int64, 0, len(b.Tiles))
		hashes := make([][]byte, 0, len(b.Tiles))
		for id, h := range b.Tiles {
			levels, idx, hashes = append(levels, int32(id.Level)), append(idx, int64(id.Index)), append(hashes, h)
		}
		q.Queue(`INSERT INTO tiles (level, idx, hashes) SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])
			 ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, levels, idx, hashes)
	}
	if cp := b.Checkpoint; cp != nil {
		q.Queue(`INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, int64(cp.Size), cp.Note)
	}
	if len(b.Leaves) > 0 {
		q.Queue(`SELECT pg_notify($1, $2)`, s.channel, strconv.FormatInt(end, 10))
	}
	return q
}

// txReader reads inside a Sequence transaction, after the head's lock:
// nothing it reads can change before the transaction ends. It holds the
// edge tiles writ_lock_head returned.
type txReader struct {
	tx   *pgx.Conn
	size uint64
	edge map[ledger.TileID][]byte

	cpSize  uint64
	cpAge   time.Duration
	cpKnown bool
}

// LatestCheckpointState implements ledger.CheckpointStater.
func (r *txReader) LatestCheckpointState() (uint64, time.Duration, bool) {
	return r.cpSize, r.cpAge, r.cpKnown
}

func (r *txReader) Size(context.Context) (uint64, error) { return r.size, nil }

func (r *txReader) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	if b, ok := r.edge[id]; ok {
		return b, nil
	}
	return readTile(ctx, r.tx, id)
}

func (r *txReader) LatestCheckpoint(ctx context.Context) (ledger.StoredCheckpoint, error) {
	return latestCheckpoint(ctx, r.tx)
}

// ReadTile implements ledger.Store.
func (s *Store) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	return readTile(ctx, s.pool, id)
}

func readTile(ctx context.Context, q querier, id ledger.TileID) ([]byte, error) {
	var b []byte
	err := q.QueryRow(ctx, `SELECT hashes FROM tiles WHERE level = $1 AND idx = $2`, int32(id.Level), int64(id.Index)).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return b, err
}

// ReadLeaves implements ledger.Store.
func (s *Store) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	return readLeaves(ctx, s.pool, start, end)
}

func readLeaves(ctx context.Context, q querier, start, end uint64) ([][]byte, error) {
	if end <= start {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT leaf FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var b []byte
		err := r.Scan(&b)
		return b, err
	})
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

// leafRow is one row of a leaf scan.
type leafRow struct {
	idx  int64
	leaf []byte
}

// ScanLeaves implements ledger.Store.
func (s *Store) ScanLeaves(ctx context.Context, start uint64, fn func(uint64, []byte) error) error {
	return scanLeaves(ctx, s.pool, start, nil, fn)
}

func scanLeaves(ctx context.Context, q querier, start uint64, lock sync.Locker, fn func(uint64, []byte) error) error {
	read := func(after leafRow, each func(leafRow) error) error {
		return queryRows(ctx, q, scanPage, func(rows pgx.Rows) (leafRow, error) {
			var r leafRow
			return r, rows.Scan(&r.idx, &r.leaf)
		}, each, `SELECT idx, leaf FROM leaves WHERE idx > $1 ORDER BY idx LIMIT $2`, after.idx)
	}
	return paged(leafRow{idx: int64(start) - 1}, scanPage, read, lock, func(r leafRow) error { return fn(uint64(r.idx), r.leaf) })
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
	return readBody(ctx, s.pool, ref)
}

func readBody(ctx context.Context, q querier, ref ledger.BodyRef) (ledger.Body, error) {
	b := ledger.Body{Index: ref.Index, Name: ref.Name}
	err := q.QueryRow(ctx, `SELECT salt, data FROM bodies WHERE idx = $1 AND name = $2`, int64(ref.Index), ref.Name).Scan(&b.Salt, &b.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, ledger.ErrNotFound
	}
	return b, err
}

// ScanBodies implements ledger.Store.
func (s *Store) ScanBodies(ctx context.Context, fn func(ledger.Body) error) error {
	return scanBodies(ctx, s.pool, nil, fn)
}

func scanBodies(ctx context.Context, q querier, lock sync.Locker, fn func(ledger.Body) error) error {
	read := func(after bodyRow, each func(bodyRow) error) error {
		return queryRows(ctx, q, bodyPage, func(rows pgx.Rows) (bodyRow, error) {
			var r bodyRow
			return r, rows.Scan(&r.idx, &r.Name, &r.Salt, &r.Data)
		}, each, `SELECT idx, name, salt, data FROM bodies WHERE (idx, name) > ($1, $2) ORDER BY idx, name LIMIT $3`, after.idx, after.Name)
	}
	return paged(bodyRow{idx: -1}, bodyPage, read, lock, func(r bodyRow) error {
		r.Index = uint64(r.idx)
		return fn(r.Body)
	})
}

// bodyRow is one row of a body scan: the body, and its index as stored.
type bodyRow struct {
	ledger.Body
	idx int64
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

// Lock takes the advisory lock name, shared or exclusive, on a connection of
// its own, and returns the function that releases it. The lock also ends if
// the connection (or this process) dies.
func (s *Store) Lock(ctx context.Context, name string, shared bool) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	fn := "pg_advisory_lock"
	if shared {
		fn = "pg_advisory_lock_shared"
	}
	key := s.LockKey(name)
	if _, err := conn.Exec(ctx, `SELECT `+fn+`($1)`, key); err != nil {
		conn.Release()
		return nil, err
	}
	return s.unlocker(conn, key, shared), nil
}

// TryLock takes the exclusive advisory lock name if it is free.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	key := s.LockKey(name)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, err
	}
	return s.unlocker(conn, key, false), true, nil
}

func (s *Store) unlocker(conn *pgxpool.Conn, key int64, shared bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			fn := "pg_advisory_unlock"
			if shared {
				fn = "pg_advisory_unlock_shared"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(ctx, `SELECT `+fn+`($1)`, key); err != nil {
				// The lock may still be held: close the session, which ends it.
				conn.Conn().Close(ctx)
			}
			conn.Release()
		})
	}
}

// Watch returns a channel that receives a value soon after any writer
// appends to the ledger (this one included), and a function that stops it.
// Delivery is best effort (a dropped connection misses some): callers also
// poll.
func (s *Store) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.wmu.Lock()
	s.watchers[ch] = struct{}{}
	s.wmu.Unlock()
	return ch, func() {
		s.wmu.Lock()
		delete(s.watchers, ch)
		s.wmu.Unlock()
	}
}

func (s *Store) wake() {
	s.wmu.Lock()
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.wmu.Unlock()
}

// listen holds one connection on LISTEN for the ledger's channel,
// reconnecting after a failure.
func (s *Store) listen() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("ledger change notifications interrupted; reconnecting", "err", err)
		s.wake() // whatever was missed is found by reading
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		// A connection still listening must not go back to the pool.
		conn.Conn().Close(context.Background())
	}()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake()
	}
}
