package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The replica lock service: advisory locks on connections of their own,
// and the notifications that wake followers when another replica commits.

// LockKey returns the advisory lock key for name, distinct per database and
// schema, so ledgers in different schemas never wait on each other.
func (s *Store) LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("writ/" + s.keyBase + "/" + name))
	return int64(h.Sum64())
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

// A lock TryLock took is probed on its connection every lockProbeInterval;
// a probe that fails, or gets no answer within lockProbeTimeout, means the
// session, and the lock with it, may be gone. So a holder learns of a lost
// lock within lockProbeInterval + lockProbeTimeout.
const (
	lockProbeInterval = time.Second
	lockProbeTimeout  = 2 * time.Second
)

// ErrLockReleased is the cause of a held context whose lock was released.
var ErrLockReleased = errors.New("postgres: lock released")

// TryLock takes the exclusive advisory lock name if it is free. held ends
// when the lock is released or found lost (its session ended: a dropped
// connection, a restarted or terminated backend); its cause says which.
// Whoever does work under the lock stops it when held ends, since another
// process may take the lock at once. ctx bounds the taking only; held
// keeps its values.
func (s *Store) TryLock(ctx context.Context, name string) (held context.Context, unlock func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	key := s.LockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, nil, false, err
	}
	held, lost := context.WithCancelCause(context.WithoutCancel(ctx))
	stop, probed := make(chan struct{}), make(chan struct{})
	go s.probeLock(conn, name, stop, probed, lost)
	release := s.unlocker(conn, key, false)
	var once sync.Once
	return held, func() {
		once.Do(func() {
			// The probe stops first: a connection serves one query at a time.
			close(stop)
			<-probed
			lost(ErrLockReleased)
			release()
		})
	}, true, nil
}

// probeLock asks conn for an answer every lockProbeInterval until stop is
// closed. After a probe that fails it closes conn, so that its session
// surely ends (if it has not already) and no process holds the lock
// believing it is another's, and ends the lock's held context with lost.
func (s *Store) probeLock(conn *pgxpool.Conn, name string, stop <-chan struct{}, probed chan<- struct{}, lost context.CancelCauseFunc) {
	defer close(probed)
	t := time.NewTicker(lockProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockProbeTimeout)
		err := conn.Ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), lockProbeTimeout)
		conn.Conn().Close(ctx)
		cancel()
		s.log.Warn("replica lock lost: its database session did not answer", "lock", name, "err", err)
		lost(fmt.Errorf("postgres: lock %s lost: %w", name, err))
		return
	}
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
