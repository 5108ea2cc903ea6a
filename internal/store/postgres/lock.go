package postgres

import (
	"context"
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

// TryLock takes the exclusive advisory lock name if it is free.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	key := s.LockKey(name)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, err
	}
	return s.unlocker(conn, key, false), true, nil
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
