package task

import (
	"context"
	"fmt"
	"math"
	"time"
)

// DefaultSnapshotInterval is Config.SnapshotInterval's default: no
// snapshot while the service runs, one at Close. Taking one holds the
// state's lock while it encodes (about a second per 50,000 tasks with a
// call in flight), and decisions wait for it; at a graceful stop nothing
// does.
const DefaultSnapshotInterval = math.MaxInt

// snapshotWait bounds writing one snapshot, locks included.
const snapshotWait = 2 * time.Minute

// loadSnapshot returns the stored snapshot's state when it checks against
// the ledger (checkSnapshot) and can stand for the replay up to it: when
// this replica checks the projection tables, they must not be behind it.
// Anything else is logged and answered with nil: the caller replays from
// the first event. projected is the tables' projected_through, or -1.
func (s *Service) loadSnapshot(ctx context.Context, checkTables bool, projected int64) (*State, uint64) {
	if s.cfg.DB == nil || s.cfg.SnapshotInterval < 0 {
		return nil, 0
	}
	if s.cfg.AllowProjectionMismatch {
		s.log.InfoContext(ctx, "repairing: the task state is replayed from the first event, not loaded from its snapshot")
		return nil, 0
	}
	d := dialectOf(s.cfg.Store)
	r, err := readSnapshot(ctx, s.cfg.DB, d)
	if err == nil && r == nil {
		return nil, 0
	}
	fallBack := func(err error) (*State, uint64) {
		s.log.WarnContext(ctx, "the task state snapshot is not used; replaying the ledger from the first event", "err", err)
		return nil, 0
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
		return nil, 0
	}
	if err := loadSnapshotBodies(ctx, s.cfg.Store, st); err != nil {
		return fallBack(err)
	}
	s.log.InfoContext(ctx, "task state loaded from its snapshot", "through", h.through, "bytes", len(r.state))
	return st, h.through
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
				s.snapshotNow()
			}
			return
		}
		s.snapshotNow()
	}
}

func (s *Service) snapshotNow() {
	ctx, cancel := context.WithTimeout(context.Background(), snapshotWait)
	defer cancel()
	if err := s.WriteSnapshot(ctx); err != nil {
		// The ledger holds the truth; the next start replays more of it.
		s.log.WarnContext(ctx, "writing the task state snapshot failed", "err", err)
	}
}

// WriteSnapshot writes a snapshot of the state now (snapshot.go) to the
// store's database. Without replicas it holds the decision gate
// exclusively while it encodes, so that no commit is between its append
// and its application to the state; with them the state applies events in
// log order and only the state's own lock is held.
func (s *Service) WriteSnapshot(ctx context.Context) error {
	if s.cfg.DB == nil {
		return nil
	}
	if s.cfg.Shared == nil {
		if err := s.mu.Lock(ctx); err != nil {
			return err
		}
	}
	start := time.Now()
	s.smu.Lock()
	if s.next == 0 {
		s.smu.Unlock()
		if s.cfg.Shared == nil {
			s.mu.Unlock()
		}
		return nil
	}
	through := s.next - 1
	state := encodeState(s.st, through, s.now())
	var err error
	if s.proj != nil && (s.proj.through < int64(through) || len(s.touched) > 0) {
		// The tables are as of through too (the events since their last
		// write change no row, or are the replicas' touched tasks): say
		// so, or a start on this snapshot could not check them.
		err = s.proj.write(ctx, s.st, s.touched, int64(through))
		clear(s.touched)
	}
	s.sinceSnap = 0
	s.smu.Unlock()
	if s.cfg.Shared == nil {
		s.mu.Unlock()
	}
	held := time.Since(start)
	if err != nil {
		return fmt.Errorf("writing projection rows: %w", err)
	}
	lh, err := leafHashAt(ctx, s.cfg.Store, through)
	if err != nil {
		return err
	}
	size, err := s.cfg.Store.Size(ctx)
	if err != nil {
		return err
	}
	r := &storedSnapshot{version: snapshotVersion, through: through, size: size, leafHash: lh, state: state}
	r.mac = snapshotMAC(s.cfg.DigestKey, r)
	d := dialectOf(s.cfg.Store)
	if err := createSnapshotTable(ctx, s.cfg.DB, d); err != nil {
		return err
	}
	if err := writeSnapshot(ctx, s.cfg.DB, d, r); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "task state snapshot written", "through", through, "bytes", len(state),
		"locked", held.Round(time.Microsecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
