package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// DPoP proofs accepted, kept in the database so that a proof replayed after
// a restart, within its window, is refused as it would have been before.
//
// Each claim is a durable write (synchronous=FULL) on the one write
// connection, so claims made at once share a transaction and its fsync: a
// claimer queues its key, and whichever batch is next takes every key
// waiting, as the ledger's sequencer does with events. No claim is answered
// before the transaction holding it has committed.

// pruneProofsEvery is how often the claim loop deletes expired proofs.
const pruneProofsEvery = time.Minute

// maxClaimBatch bounds the keys one transaction records.
const maxClaimBatch = 256

type proofClaim struct {
	key   []byte
	until time.Time
	reply chan claimResult
}

type claimResult struct {
	fresh bool
	err   error
}

// ClaimProof records a DPoP proof's key (a hash of the proof key's
// thumbprint and its jti) as used until until, durably. It reports false
// when the key is already recorded and has not expired: the proof is a
// replay. An expired record is taken over. An error means the claim may or
// may not be recorded; the caller refuses the proof.
func (s *Store) ClaimProof(ctx context.Context, key []byte, until time.Time) (bool, error) {
	c := &proofClaim{key: append([]byte(nil), key...), until: until, reply: make(chan claimResult, 1)}
	select {
	case s.claims <- c:
	case <-s.stopClaims:
		return false, errors.New("sqlite store is closed")
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.fresh, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// claimLoop commits waiting claims in batches until the store closes.
func (s *Store) claimLoop() {
	defer close(s.claimsDone)
	var pruned time.Time
	batch := make([]*proofClaim, 0, maxClaimBatch)
	for {
		var c *proofClaim
		select {
		case c = <-s.claims:
		case <-s.stopClaims:
			for {
				select {
				case c := <-s.claims:
					c.reply <- claimResult{err: errors.New("sqlite store is closed")}
				default:
					return
				}
			}
		}
		batch = append(batch[:0], c)
	drain:
		for len(batch) < maxClaimBatch {
			select {
			case c := <-s.claims:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		now := time.Now()
		fresh, err := s.commitClaims(context.Background(), batch, now)
		if now.Sub(pruned) >= pruneProofsEvery {
			pruned = now
			// Pruned before the batch is answered, so a claimer that reads
			// the table afterwards sees it done. One that fails is tried
			// again a minute later; claims never depend on it (an expired
			// record is taken over).
			s.w.ExecContext(context.Background(), `DELETE FROM dpop_proofs WHERE until < ?`, now.UnixNano())
		}
		for i, c := range batch {
			c.reply <- claimResult{fresh: err == nil && fresh[i], err: err}
		}
		clear(batch)
	}
}

// commitClaims records claims in one transaction and reports which were
// fresh. A key claimed twice in the batch is fresh only the first time.
func (s *Store) commitClaims(ctx context.Context, claims []*proofClaim, now time.Time) (fresh []bool, err error) {
	if err := s.files.lostErr(); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	st := tx.StmtContext(ctx, s.claimStmt)
	fresh = make([]bool, len(claims))
	for i, c := range claims {
		var one int
		err := st.QueryRowContext(ctx, c.key, c.until.UnixNano(), now.UnixNano()).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			fresh[i] = true
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	// The claims are only durable if the file is still the one opened.
	if err := s.files.check(); err != nil {
		return nil, err
	}
	return fresh, nil
}
