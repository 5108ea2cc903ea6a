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
	"github.com/writhq/writ/internal/store/leafenc"
)

// Store is a PostgreSQL-backed store.
type Store struct {
	pool *pgxpool.Pool
	// refs reads the leaves of a span's dictionary (leafenc.Cache) for a
	// read or a commit that may hold a connection of pool: a pool of its
	// own, whose connections are never held while waiting for another.
	refs *pgxpool.Pool
	// dicts are the leaf dictionaries of the spans last used.
	dicts   *leafenc.Cache
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

	// head is the log's head as this store's last commit left it (ahead.go).
	head aheadHead

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
	refsCfg := cfg.Copy()
	cfg.MaxConns, refsCfg.MaxConns = o.MaxConns, 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", redact(err))
	}
	refs, err := pgxpool.NewWithConfig(ctx, refsCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", redact(err))
	}
	s := &Store{pool: pool, refs: refs, log: o.Logger, watchers: map[chan struct{}]struct{}{}, claimed: map[int64]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	s.dicts = leafenc.NewCache(func(ctx context.Context, start, end uint64) ([][]byte, error) {
		return readRefs(ctx, refs, start, end)
	})
	if err := s.init(ctx); err != nil {
		pool.Close()
		refs.Close()
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
		s.refs.Close()
	})
	return nil
}

// DB returns a database/sql handle on the pool, for packages that keep
// their own tables (projections) beside the ledger.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect names the SQL flavour of DB, for the packages that keep tables
// of their own there: "postgres".
func (s *Store) Dialect() string { return "postgres" }

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
	s.head.forget()
	rows, err := s.pack(ctx, b)
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.write(ctx, tx, b, rows) }); err != nil {
		return err
	}
	rows.commit.Done()
	return nil
}

// Sequence implements ledger.SharedStore. When known is where this store's
// own last commit left the head, the batch is stamped first and committed
// with the lock in one round trip (ahead.go); when that finds the head
// moved, and otherwise, the head's lock and the edge and leaves a writer
// needs to catch up come in one round trip (writ_lock_head), the batch's
// statements and the COMMIT in another. Only those two round trips and the
// commit's flush are spent holding the lock.
func (s *Store) Sequence(ctx context.Context, known uint64, stamp func(context.Context, ledger.LockedReader) (*ledger.Batch, error)) error {
	if st, ok := s.head.known(known); ok {
		err := s.sequenceAhead(ctx, st, stamp)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errMoved):
			s.head.moved()
		case errors.Is(err, errRestamp):
			s.head.forget()
		default:
			s.head.forget()
			return err
		}
		s.head.count(func(c *SequenceStats) { c.Refused++ })
	}
	s.head.count(func(c *SequenceStats) { c.Locked++ })
	err := s.sequenceLocked(ctx, known, stamp)
	if err != nil {
		s.head.forget()
	}
	return err
}

// sequenceLocked is Sequence in two round trips.
func (s *Store) sequenceLocked(ctx context.Context, known uint64, stamp func(context.Context, ledger.LockedReader) (*ledger.Batch, error)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	done := false
	defer func() {
		if !done {
			rollback(c)
		}
	}()
	r := &txReader{s: s, tx: c, edge: map[ledger.TileID][]byte{}}
	// BEGIN and the lock go in one round trip: the wait for the lock is
	// the only one before it is held.
	begin := &pgx.Batch{}
	begin.Queue("BEGIN")
	begin.Queue(`SELECT o_size, o_cp_size, o_cp_age, o_level, o_idx, o_hashes, o_leaf_idx, o_leaf, o_leaf_enc FROM writ_lock_head($1)`, int64(known))
	asked := time.Now()
	br := c.SendBatch(ctx, begin)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	first := true
	// others are the leaves other writers appended, as stored.
	var others []leafRow
	for rows.Next() {
		var n, cpSize int64
		var cpAge float64
		var level *int32
		var idx, leafIdx *int64
		var hashes, leaf []byte
		var leafEnc *int16
		if err := rows.Scan(&n, &cpSize, &cpAge, &level, &idx, &hashes, &leafIdx, &leaf, &leafEnc); err != nil {
			rows.Close()
			return err
		}
		if leafIdx != nil && leafEnc != nil {
			if len(others) == 0 {
				r.leavesFrom = uint64(*leafIdx)
			}
			if uint64(*leafIdx) == r.leavesFrom+uint64(len(others)) {
				others = append(others, leafRow{idx: *leafIdx, leaf: leaf, enc: *leafEnc})
			}
			continue
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
	if err := br.Close(); err != nil {
		return err
	}
	if first {
		return errors.New("the log head is missing")
	}
	dc := s.dicts.Decoder()
	for _, l := range others {
		leaf, err := dc.LeafCopy(ctx, uint64(l.idx), l.leaf, int(l.enc))
		if err != nil {
			return err
		}
		r.leaves = append(r.leaves, leaf)
	}
	b, err := stamp(ctx, r)
	if err != nil || b == nil {
		return err
	}
	packed, err := s.pack(ctx, b)
	if err != nil {
		return err
	}
	q := &pgx.Batch{}
	s.queueBatch(q, b, packed, `SELECT writ_advance_head($1, $2, $3)`)
	q.Queue("COMMIT")
	sent := time.Now()
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
	// The age writ_lock_head read was the age when the lock was granted,
	// after asked.
	st := headState{size: r.size, cpSize: -1}
	if r.cpKnown {
		st.cpSize = int64(r.cpSize)
	}
	s.head.set(st.after(b, b.Checkpoint != nil, r.cpAge, asked, sent), r.size == known)
	packed.commit.Done()
	return nil
}

// write adds b, packed as rows, in tx: every statement goes in one round
// trip.
func (s *Store) write(ctx context.Context, tx pgx.Tx, b *ledger.Batch, rows *batchRows) error {
	q := &pgx.Batch{}
	s.queueBatch(q, b, rows, `SELECT writ_advance_head($1, $2, $3)`)
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

// queueBatch queues b's statements on q, the first being advance with the
// batch's start and end and its checkpoint's size (-1: none).
func (s *Store) queueBatch(q *pgx.Batch, b *ledger.Batch, rows *batchRows, advance string) {
	cp := int64(-1)
	if b.Checkpoint != nil {
		cp = int64(b.Checkpoint.Size)
	}
	q.Queue(advance, int64(b.Start), int64(b.Start)+int64(len(b.Leaves)), cp)
	s.queueRows(q, b, rows, true)
}

// batchRows are a batch's leaves and bodies as the store keeps them
// (internal/store/leafenc), and the dictionaries they were packed with.
type batchRows struct {
	commit             *leafenc.Commit
	leaves, bodies     [][]byte
	leafEncs, bodyEncs []int16
}

// pack packs b's leaves and bodies. It reads through the store's own
// connections the dictionary leaves stored before b, if it needs any
// (which are committed, since b starts where the head is).
func (s *Store) pack(ctx context.Context, b *ledger.Batch) (*batchRows, error) {
	r := &batchRows{commit: s.dicts.Commit(b.Start, b.Leaves, nil),
		leaves: make([][]byte, len(b.Leaves)), leafEncs: make([]int16, len(b.Leaves)),
		bodies: make([][]byte, len(b.Bodies)), bodyEncs: make([]int16, len(b.Bodies))}
	for i := range b.Leaves {
		enc, data, err := r.commit.Leaf(ctx, i)
		if err != nil {
			return nil, err
		}
		r.leaves[i], r.leafEncs[i] = data, int16(enc)
	}
	for i, body := range b.Bodies {
		enc, data, err := r.commit.Body(ctx, body.Index, body.Data)
		if err != nil {
			return nil, err
		}
		r.bodies[i], r.bodyEncs[i] = data, int16(enc)
	}
	return r, nil
}

// queueRows queues the statements that store b's rows on q, its
// checkpoint's too when withCheckpoint.
func (s *Store) queueRows(q *pgx.Batch, b *ledger.Batch, rows *batchRows, withCheckpoint bool) {
	end := int64(b.Start) + int64(len(b.Leaves))
	if len(b.Leaves) > 0 {
		idx := make([]int64, len(b.Leaves))
		for i := range idx {
			idx[i] = int64(b.Start) + int64(i)
		}
		q.Queue(`INSERT INTO leaves (idx, leaf, enc) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::smallint[])`, idx, rows.leaves, rows.leafEncs)
	}
	if len(b.Bodies) > 0 {
		idx := make([]int64, len(b.Bodies))
		names := make([]string, len(b.Bodies))
		salts := make([][]byte, len(b.Bodies))
		for i, body := range b.Bodies {
			idx[i], names[i], salts[i] = int64(body.Index), body.Name, body.Salt
		}
		q.Queue(`INSERT INTO bodies (idx, name, salt, data, enc) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::smallint[])`,
			idx, names, salts, rows.bodies, rows.bodyEncs)
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
		queueTiles(q, b)
	}
	if cp := b.Checkpoint; cp != nil && withCheckpoint {
		q.Queue(`INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`, int64(cp.Size), cp.Note)
	}
	if len(b.Leaves) > 0 {
		q.Queue(`SELECT pg_notify($1, $2)`, s.channel, strconv.FormatInt(end, 10))
	}
}

// txReader reads inside a Sequence transaction, after the head's lock:
// nothing it reads can change before the transaction ends. It holds the
// edge tiles and the leaves (from leavesFrom on) writ_lock_head returned.
type txReader struct {
	s          *Store
	tx         *pgx.Conn
	size       uint64
	edge       map[ledger.TileID][]byte
	leaves     [][]byte
	leavesFrom uint64

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

func (r *txReader) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	if held := r.leavesFrom + uint64(len(r.leaves)); start >= r.leavesFrom && start < held && end <= held {
		return r.leaves[start-r.leavesFrom : end-r.leavesFrom], nil
	}
	return r.s.readLeaves(ctx, r.tx, start, end)
}
