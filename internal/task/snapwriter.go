package task

import (
	"context"
	"fmt"
	"math"
	"time"
)

// DefaultSnapshotInterval is Config.SnapshotInterval's default: a
// snapshot every million events applied, so that a start after a crash
// replays at most about that many, besides the one at Close. Decisions do
// not wait for one (snapbuild.go); building it takes a second state in
// memory meanwhile, and work in proportion to the state, which a million
// events' worth of decisions pays for many times over.
const DefaultSnapshotInterval = 1_000_000

// SnapshotAtClose is the Config.SnapshotInterval of a service that takes
// a snapshot at Close only.
const SnapshotAtClose = math.MaxInt

// snapshotWait bounds writing one snapshot, locks included.
const snapshotWait = 5 * time.Minute

// loadSnapshot returns the stored snapshot's state when it checks against
// the ledger (checkSnapshot) and can stand for the replay up to it: when
// this replica checks the projection tables, they must not be behind it.
// Anything else is logged and answered with nil: the caller replays from
// the first event. projected is the tables' projected_through, or -1. The
// state has no bodies yet: the caller reads them (loadSnapshotBodies).
func (s *Service) loadSnapshot(ctx context.Context, checkTables bool, projected int64) (st *State, through uint64, size int) {
	if s.cfg.DB == nil || s.cfg.SnapshotInterval < 0 {
		return nil, 0, 0
	}
	if s.cfg.AllowProjectionMismatch {
		s.log.InfoContext(ctx, "repairing: the task state is replayed from the first event, not loaded from its snapshot")
		return nil, 0, 0
	}
	d := dialectOf(s.cfg.Store)
	r, err := readSnapshot(ctx, s.cfg.DB, d)
	if err == nil && r == nil {
		return nil, 0, 0
	}
	fallBack := func(err error) (*State, uint64, int) {
		s.snapshotNotUsed(ctx, err)
		return nil, 0, 0
	}
	if err != nil {
		return fallBack(err)
	}
	st, h, err := checkSnapshot(ctx, s.cfg.Store, s.cfg.DigestKey, r)
	if err != nil {
		return fallBack(err)
	}
	if checkTables && projected < int64(r.through) {
		s.log.InfoContext(ctx, "the projection tables are behind the task state snapshot; replaying the ledger from the first event to check them",
			"projected_through", projected, "snapshot_through", r.through)
		return nil, 0, 0
	}
	return st, h.through, len(r.state)
}

// snapshotNotUsed logs why a start replays from the first event rather
// than load the stored snapshot.
func (s *Service) snapshotNotUsed(ctx context.Context, err error) {
	s.log.WarnContext(ctx, "the task state snapshot is not used; replaying the ledger from the first event", "err", err)
}

// noteApplied counts n events applied for the next snapshot, and asks for
// one when enough were. The caller holds smu.
func (s *Service) noteApplied(n int) {
	s.sinceSnap += n
	if s.cfg.SnapshotInterval > 0 && s.sinceSnap >= s.cfg.SnapshotInterval {
		select {
		case s.snapKick <- struct{}{}:
		default:
		}
	}
}

// snapshots writes a snapshot whenever asked (noteApplied), and a last one
// at Close, off the commit path.
func (s *Service) snapshots() {
	defer close(s.snapDone)
	for {
		select {
		case <-s.snapKick:
		case <-s.stop:
			s.smu.Lock()
			due := s.sinceSnap > 0
			s.smu.Unlock()
			if due {
				s.snapshotNow(false)
			}
			return
		}
		s.snapshotNow(true)
	}
}

// snapshotNow writes a snapshot, built apart from the state when apart
// (writeSnapshot).
func (s *Service) snapshotNow(apart bool) {
	ctx, cancel := context.WithTimeout(context.Background(), snapshotWait)
	defer cancel()
	if err := s.writeSnapshot(ctx, apart); err != nil {
		// The ledger holds the truth; the next start replays more of it.
		s.log.WarnContext(ctx, "writing the task state snapshot failed", "err", err)
	}
}

// WriteSnapshot writes a snapshot of the state now (snapshot.go) to the
// store's database. It builds the snapshot apart from the service's state
// (snapbuild.go) when the stored one can be built on; the locks are then
// held only to fix the index it covers and to bring the projection tables
// to it. Otherwise it encodes the service's state, and writes it, under
// them.
func (s *Service) WriteSnapshot(ctx context.Context) error {
	return s.writeSnapshot(ctx, true)
}

// snapCut is where a snapshot is taken: the last index it covers, the time
// it forgets as of, how many bytes were written when it was written under
// the lock, and how long the lock was held.
type snapCut struct {
	through uint64
	swept   time.Time
	written int
	held    time.Duration
}

// cut fixes the snapshot's index, and when store encodes the service's
// state as of it and writes it (storeState). Without replicas it holds
// the decision gate exclusively, so that no commit is between its append
// and its application to the state; with them the state applies events in
// log order and only the state's own lock is held. ok is false when the
// state has applied nothing.
//
// The state is written under the lock, a part at a time as it is
// encoded, rather than gathered and written after: gathered, a state of a
// million calls in flight is 39 MB more in memory while it is written,
// and that grows with the state; streamed, about one part. The writing
// holds the lock longer, 1.3 s against 1.1 s at a million calls
// (docs/performance.md, Memory of a long task), and only when no stored
// snapshot can be built on, and at Close, when nothing waits.
func (s *Service) cut(ctx context.Context, store bool) (c snapCut, ok bool, err error) {
	if s.cfg.Shared == nil {
		if err := s.mu.Lock(ctx); err != nil {
			return c, false, err
		}
		defer s.mu.Unlock()
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	got := time.Now()
	defer func() { c.held = time.Since(got) }()
	if s.next == 0 {
		return c, false, nil
	}
	c.through, c.swept = s.next-1, s.now()
	if store {
		// Before the tables are written, as their rows are not of what
		// it forgets: the snapshot's parts are written after them, in a
		// transaction of their own.
		s.st.forgetActions(c.swept)
	}
	if s.proj != nil && (s.proj.through < int64(c.through) || len(s.touched) > 0) {
		// The tables are as of through too (the events since their last
		// write change no row, or are the replicas' touched tasks): say
		// so, or a start on this snapshot could not check them.
		err = s.proj.write(ctx, s.st, s.touched, int64(c.through))
		clear(s.touched)
	}
	s.sinceSnap = 0
	select {
	case <-s.snapKick:
		// Asked for by events this snapshot covers, applied while it was
		// due: taking another now would build a second copy of the
		// state for nothing.
	default:
	}
	if err != nil {
		return c, false, fmt.Errorf("writing projection rows: %w", err)
	}
	if store {
		if c.written, err = s.storeState(ctx, s.st, c.through, c.swept); err != nil {
			return c, false, err
		}
	}
	return c, true, nil
}

// storeState writes st, which has forgotten what it would at swept, as
// the snapshot through index through, streaming its encoding to the
// store's database (writeSnapshot), and returns how many bytes that was:
// 0 when the stored snapshot covers more, and st is not encoded.
func (s *Service) storeState(ctx context.Context, st *State, through uint64, swept time.Time) (int, error) {
	lh, err := leafHashAt(ctx, s.cfg.Store, through)
	if err != nil {
		return 0, err
	}
	size, err := s.cfg.Store.Size(ctx)
	if err != nil {
		return 0, err
	}
	r := &storedSnapshot{version: snapshotVersion, through: through, size: size, leafHash: lh}
	written := 0
	err = writeSnapshot(ctx, s.cfg.DB, dialectOf(s.cfg.Store), s.cfg.DigestKey, r, func(put func([]byte) error) ([]byte, error) {
		sum, n, err := streamState(st, through, swept, put)
		written = n
		return sum, err
	})
	return written, err
}

// writeSnapshot is WriteSnapshot; apart false encodes the service's state
// under the lock whatever is stored, which costs less when nothing waits
// (at Close).
func (s *Service) writeSnapshot(ctx context.Context, apart bool) error {
	if s.cfg.DB == nil {
		return nil
	}
	start := time.Now()
	if err := createSnapshotTable(ctx, s.cfg.DB, dialectOf(s.cfg.Store)); err != nil {
		return err
	}
	var base *State
	var baseAt uint64
	if apart {
		base, baseAt = s.snapshotBase(ctx)
	}
	c, ok, err := s.cut(ctx, base == nil)
	if err != nil || !ok {
		return err
	}
	built := "under the lock"
	if base != nil {
		if baseAt >= c.through {
			return nil // the stored one covers as much
		}
		if err := replayOnto(ctx, s.cfg.Store, base, baseAt+1, c.through); err != nil {
			return err
		}
		base.forgetActions(c.swept)
		if c.written, err = s.storeState(ctx, base, c.through, c.swept); err != nil {
			return err
		}
		base = nil
		built = fmt.Sprintf("from the snapshot through %d", baseAt)
	}
	if c.written == 0 {
		return nil // the stored one covers more
	}
	s.log.InfoContext(ctx, "task state snapshot written", "through", c.through, "bytes", c.written, "built", built,
		"locked", c.held.Round(time.Microsecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
