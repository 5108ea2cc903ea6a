package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/writhq/writ/internal/ledger"
)

// A snapshot taken while the service runs is not encoded from the
// service's state, which would hold the state's lock — and the decision
// gate — for as long as encoding the whole state takes. It is built apart:
// from the stored snapshot, decoded, and the ledger's events after it,
// replayed up to the index the new one covers, all without the lock. That
// is what a start does (load), and what CheckLedger compares a snapshot
// with; the bytes are those the service's own state encodes to at that
// index (snapshot.go: the encoding is canonical). The cost is a second
// state in memory while the snapshot is built.

// errBuilt stops a scan of the ledger at the snapshot's index.
var errBuilt = errors.New("built")

// snapshotBase returns the stored snapshot's state and the index it
// covers when a start of this service would load it (loadSnapshot), so
// that the next snapshot may be built on it; nil otherwise, and then the
// next one is encoded from the service's state under the lock.
func (s *Service) snapshotBase(ctx context.Context) (*State, uint64) {
	if s.cfg.SnapshotInterval < 0 || s.cfg.AllowProjectionMismatch {
		// A repairing start trusts no stored snapshot, nor do the
		// snapshots it takes.
		return nil, 0
	}
	r, err := readSnapshot(ctx, s.cfg.DB, dialectOf(s.cfg.Store))
	if err != nil || r == nil {
		return nil, 0
	}
	st, h, err := checkSnapshot(ctx, s.cfg.Store, s.cfg.DigestKey, r)
	if err != nil {
		s.log.InfoContext(ctx, "the stored task state snapshot is not built on; the next is encoded from the state", "err", err)
		return nil, 0
	}
	return st, h.through
}

// replayOnto applies the ledger's events from index from to index through
// to st, as a start does, but for the bodies, which a snapshot does not
// hold.
func replayOnto(ctx context.Context, store ledger.Store, st *State, from, through uint64) error {
	err := store.ScanLeaves(ctx, from, func(index uint64, leaf []byte) error {
		if index > through {
			return errBuilt
		}
		e, err := ledger.ParseLeaf(index, leaf)
		if err != nil {
			return err
		}
		st.Replay(e)
		if index == through {
			return errBuilt
		}
		return nil
	})
	if errors.Is(err, errBuilt) {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("event %d: %w", through, ledger.ErrNotFound)
	}
	return fmt.Errorf("replaying the ledger for a snapshot: %w", err)
}
