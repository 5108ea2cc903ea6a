package postgres

import (
	"context"
	"time"
)

// Claim takes the exclusive advisory lock name and returns the function
// that releases it. Unlike Lock, every claim of this store shares one
// session, so any number of them hold one connection: they are for
// short, rarely contended locks (one step-up, one action's result) that
// many requests take at once. A claim waits, polling, while another
// session or another caller of this store holds the name.
func (s *Store) Claim(ctx context.Context, name string) (func(), error) {
	key := s.LockKey(name)
	delay := 200 * time.Microsecond
	for {
		ok, err := s.tryClaim(ctx, key)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() { s.unclaim(key) }, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

func (s *Store) tryClaim(ctx context.Context, key int64) (bool, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.claimed[key] {
		return false, nil // advisory locks nest within a session
	}
	if s.claimConn == nil {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return false, err
		}
		s.claimConn = c
	}
	var ok bool
	if err := s.claimConn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		s.dropClaimConn()
		return false, err
	}
	if ok {
		s.claimed[key] = true
	}
	return ok, nil
}

func (s *Store) unclaim(key int64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.claimed[key] {
		return
	}
	delete(s.claimed, key)
	if s.claimConn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.claimConn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		s.dropClaimConn()
	}
}

// dropClaimConn closes the claims' session, which releases every claim on
// it in the database. The caller holds cmu.
func (s *Store) dropClaimConn() {
	if s.claimConn == nil {
		return
	}
	s.claimConn.Conn().Close(context.Background())
	s.claimConn.Release()
	s.claimConn = nil
	clear(s.claimed)
}

// Waited reports whether some session waits for the advisory lock name,
// so that a holder that could keep it lets it go.
func (s *Store) Waited(ctx context.Context, name string) (bool, error) {
	key := uint64(s.LockKey(name))
	var waited bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1)`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&waited)
	return waited, err
}
