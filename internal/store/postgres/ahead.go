package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/writhq/writ/internal/ledger"
)

// A writer that finds the head where its own last commit left it (always,
// for a single replica) stamps its batch before it asks for the lock and
// sends BEGIN, writ_commit_head (the lock and the check that nobody wrote
// in between), the batch's rows and the COMMIT in one round trip: the lock
// is then held for the database's own work and the commit's flush only,
// with no round trip and none of the writer's CPU inside it. Whether the
// batch's checkpoint is stored is decided under the lock by the
// checkpoint's age, as for a batch stamped there. When the check fails
// (another replica wrote, or a checkpoint is due and the batch has none)
// the transaction is rolled back and the batch stamped again under the
// lock, in two round trips as before (docs/design/ledger.md, "One round
// trip").

// writ_commit_head's refusals: the head moved, or a checkpoint is due
// and the batch has none.
const (
	sqlStateMoved = "WR001"
	sqlStateDue   = "WR002"
)

// errMoved says a batch stamped ahead of the lock did not fit the head
// because another writer moved it; errRestamp, for another reason.
var (
	errMoved   = errors.New("the log head moved")
	errRestamp = errors.New("the batch is to be stamped under the lock")
)

// headState is what writ_lock_head would return to the writer that made
// the last commit this store knows of, as that commit left it.
type headState struct {
	size   uint64
	cpSize int64 // -1: no checkpoint stored
	// The checkpoint's age was at most cpAge at basis (this process's
	// monotonic clock), so it is at most cpAge + time since basis now.
	cpAge time.Duration
	basis time.Time
}

// aheadHead holds the head as this store's last commit left it.
//
// contended is set when another writer moved the head under a batch
// stamped ahead: batches are then stamped under the lock until one finds
// the head where this store's previous commit left it, so that replicas
// taking turns do not pay a refused round trip on most batches.
type aheadHead struct {
	mu        sync.Mutex
	ok        bool
	contended bool
	state     headState
	stats     SequenceStats
}

// SequenceStats counts how Sequence committed its batches.
type SequenceStats struct {
	// Ahead is the batches committed in one round trip, stamped before
	// the lock.
	Ahead uint64
	// Refused is the stamps made ahead and then again under the lock:
	// the head had moved, a checkpoint was due and the batch had none, or
	// the writer asked for the lock (ledger.ErrLockNeeded).
	Refused uint64
	// Locked is the batches (and empty stamps) sequenced under the lock,
	// in two round trips, the refused ones included.
	Locked uint64
}

// SequenceStats returns how Sequence has committed so far.
func (s *Store) SequenceStats() SequenceStats {
	s.head.mu.Lock()
	defer s.head.mu.Unlock()
	return s.head.stats
}

// known returns the head as this store's last commit left it, if known is
// where that commit ended.
func (h *aheadHead) known(known uint64) (headState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state, h.ok && !h.contended && h.state.size == known
}

// set records the head a commit left; forget, that it is unknown.
// unmoved is whether the commit found the head where the one before it
// left it.
func (h *aheadHead) set(st headState, unmoved bool) {
	h.mu.Lock()
	h.state, h.ok = st, true
	if unmoved {
		h.contended = false
	}
	h.mu.Unlock()
}

// moved records that another writer moved the head under a batch.
func (h *aheadHead) moved() {
	h.mu.Lock()
	h.ok, h.contended = false, true
	h.mu.Unlock()
}

func (h *aheadHead) forget() {
	h.mu.Lock()
	h.ok = false
	h.mu.Unlock()
}

func (h *aheadHead) count(f func(*SequenceStats)) {
	h.mu.Lock()
	f(&h.stats)
	h.mu.Unlock()
}

// after returns the head a batch leaves when committed on st: the
// checkpoint's age is at most age at basis, or, when the batch stored
// one (stored), zero at sent (the batch was sent before the database
// stamped it).
func (st headState) after(b *ledger.Batch, stored bool, age time.Duration, basis, sent time.Time) headState {
	next := headState{size: b.Start + uint64(len(b.Leaves)), cpSize: st.cpSize, cpAge: age, basis: basis}
	if stored {
		next.cpSize = max(next.cpSize, int64(b.Checkpoint.Size))
		next.cpAge, next.basis = 0, sent
	}
	return next
}

// aheadReader is the ledger.AheadReader of a batch stamped before the
// lock. Its reads go to the pool: they are of leaves and tiles below the
// head's size, which never change once stored.
type aheadReader struct {
	s        *Store
	st       headState
	now      time.Time
	interval time.Duration
	compare  bool
	stored   bool
}

var _ ledger.AheadReader = (*aheadReader)(nil)

func (r *aheadReader) Size(context.Context) (uint64, error) { return r.st.size, nil }

func (r *aheadReader) LatestCheckpointState() (uint64, time.Duration, bool) {
	if r.st.cpSize < 0 {
		return 0, 0, false
	}
	return uint64(r.st.cpSize), r.st.cpAge + r.now.Sub(r.st.basis), true
}

func (r *aheadReader) UseCheckpointInterval(d time.Duration) { r.interval, r.compare = d, true }

func (r *aheadReader) CheckpointStored() bool { return r.stored }

func (r *aheadReader) ReadTile(ctx context.Context, id ledger.TileID) ([]byte, error) {
	return readTile(ctx, r.s.pool, id)
}

func (r *aheadReader) LatestCheckpoint(ctx context.Context) (ledger.StoredCheckpoint, error) {
	return latestCheckpoint(ctx, r.s.pool)
}

func (r *aheadReader) ReadLeaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	return r.s.readLeaves(ctx, r.s.pool, start, end)
}

// sequenceAhead stamps a batch on st and commits it in one round trip. It
// returns, having written nothing, errMoved when another writer moved the
// head from st and errRestamp when a checkpoint is due and the batch has
// none, or stamp returned ledger.ErrLockNeeded. When stamp returns no
// batch nothing is written and no lock taken.
func (s *Store) sequenceAhead(ctx context.Context, st headState, stamp func(context.Context, ledger.LockedReader) (*ledger.Batch, error)) error {
	r := &aheadReader{s: s, st: st, now: time.Now()}
	b, err := stamp(ctx, r)
	if errors.Is(err, ledger.ErrLockNeeded) {
		return errRestamp
	}
	if err != nil || b == nil {
		return err
	}
	rows, err := s.pack(ctx, b)
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	var interval *float64
	if r.compare && r.interval > 0 {
		v := r.interval.Seconds()
		interval = &v
	}
	cp, note := int64(-1), []byte(nil)
	if b.Checkpoint != nil {
		cp, note = int64(b.Checkpoint.Size), b.Checkpoint.Note
	}
	q := &pgx.Batch{}
	q.Queue("BEGIN")
	q.Queue(`SELECT o_age, o_stored FROM writ_commit_head($1, $2, $3, $4, $5, $6)`,
		int64(b.Start), int64(b.Start)+int64(len(b.Leaves)), cp, note, st.cpSize, interval)
	s.queueRows(q, b, rows, false)
	q.Queue("COMMIT")
	sent := time.Now()
	res := c.SendBatch(ctx, q)
	done := false
	defer func() {
		if !done {
			rollback(c)
		}
	}()
	_, err = res.Exec()
	var age float64
	var stored bool
	if err == nil {
		err = res.QueryRow().Scan(&age, &stored)
	}
	var tag pgconn.CommandTag
	for i := 2; err == nil && i < q.Len(); i++ {
		tag, err = res.Exec()
	}
	if err != nil {
		res.Close()
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
			switch pe.Code {
			case sqlStateMoved:
				return errMoved
			case sqlStateDue:
				return errRestamp
			}
		}
		return err
	}
	if err := res.Close(); err != nil {
		return err
	}
	done = true
	if tag.String() != "COMMIT" {
		return fmt.Errorf("the batch's transaction ended in %s", tag)
	}
	r.stored = stored
	s.head.set(st.after(b, stored, time.Duration(age*float64(time.Second)), sent, sent), true)
	s.head.count(func(c *SequenceStats) { c.Ahead++ })
	rows.commit.Done()
	return nil
}

// rollback ends the failed or abandoned transaction on c, or closes c: it
// must not go back to the pool open.
func rollback(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		c.Close(ctx)
	}
}
