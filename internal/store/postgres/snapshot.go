package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/writhq/writ/internal/ledger"
)

// Snapshot is a read-only view of the store as of one moment, for reading
// the whole ledger (`writ ledger verify`) while replicas append: every
// read sees the same leaves, tiles, bodies and checkpoints.
//
// Its reads share one transaction, so they take turns (mu), and scans read
// a page at a time before calling back: a callback may read too.
type Snapshot struct {
	s  *Store
	mu sync.Mutex
	tx pgx.Tx
}

var _ ledger.Store = (*Snapshot)(nil)

// errReadOnly refuses writes to a snapshot.
var errReadOnly = errors.New("a snapshot of the store is read-only")

// Snapshot opens a read-only view in a REPEATABLE READ transaction. Close
// ends it.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	// The snapshot is taken at the first statement.
	if _, err := size(ctx, tx); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return &Snapshot{s: s, tx: tx}, nil
}

// Close ends the snapshot's transaction.
func (n *Snapshot) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.tx.Rollback(ctx)
}

func (n *Snapshot) Size(ctx context.Context) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return size(ctx, n.tx)
}

func (n *Snapshot) Commit(context.Context, *ledger.Batch) error { return errReadOnly }

func (n *Snapshot) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return readTile(ctx, n.tx, id)
}

func (n *Snapshot) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.s.readLeaves(ctx, n.tx, start, end)
}

func (n *Snapshot) ScanLeaves(ctx context.Context, start uint64, fn func(uint64, []byte) error) error {
	return n.s.scanLeaves(ctx, n.tx, start, &n.mu, fn)
}

func (n *Snapshot) LatestCheckpoint(ctx context.Context) (ledger.StoredCheckpoint, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return latestCheckpoint(ctx, n.tx)
}

func (n *Snapshot) ScanCheckpoints(ctx context.Context, fn func(ledger.StoredCheckpoint) error) error {
	return scanCheckpoints(ctx, n.tx, &n.mu, fn)
}

func (n *Snapshot) ReadBody(ctx context.Context, ref ledger.BodyRef) (ledger.Body, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.s.readBody(ctx, n.tx, ref)
}

func (n *Snapshot) ScanBodies(ctx context.Context, fn func(ledger.Body) error) error {
	return n.s.scanBodies(ctx, n.tx, &n.mu, fn)
}

func (n *Snapshot) Meta(ctx context.Context, key string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return meta(ctx, n.tx, key)
}

func (n *Snapshot) InitMeta(context.Context, string, string) (string, error) { return "", errReadOnly }
