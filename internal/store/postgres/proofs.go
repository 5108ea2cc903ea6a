package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// pruneProofsEvery is how often ClaimProof deletes expired proofs.
const pruneProofsEvery = time.Minute

// ClaimProof records a DPoP proof's key (a hash of the proof key's
// thumbprint and its jti) as used until until, for every replica of this
// database. It reports false when the key is already recorded and has not
// expired: the proof is a replay. An expired record is taken over.
func (s *Store) ClaimProof(ctx context.Context, key []byte, until time.Time) (bool, error) {
	var one int
	err := s.pool.QueryRow(ctx, `INSERT INTO dpop_proofs (key, until) VALUES ($1, $2)
	  ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE dpop_proofs.until < clock_timestamp()
	  RETURNING 1`, key, until).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	s.pruneProofs()
	return true, nil
}

// pruneProofs deletes expired proofs in the background, at most once per
// pruneProofsEvery, so that no claim waits for it.
func (s *Store) pruneProofs() {
	now := time.Now()
	last := s.prunedProofs.Load()
	if now.UnixNano()-last < int64(pruneProofsEvery) || !s.prunedProofs.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.pool.Exec(ctx, `DELETE FROM dpop_proofs WHERE until < clock_timestamp()`); err != nil {
			s.prunedProofs.Store(last) // try again on the next claim
		}
	}()
}
