package task

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/writhq/writ/internal/ledger"
)

// Coordinator lets several writ replicas share one store (store/postgres
// is one). With it, a Service follows the events other replicas append, in
// index order (replica.go), and serializes decisions across replicas with a
// lock in the database: changes to a task's lifecycle take it exclusively,
// authorizations take it shared.
type Coordinator interface {
	// Lock takes the named lock, shared or exclusive, and returns the
	// function that releases it.
	Lock(ctx context.Context, name string, shared bool) (func(), error)
	// TryLock takes the named lock exclusively if it is free. held ends
	// when the lock is released or lost.
	TryLock(ctx context.Context, name string) (held context.Context, unlock func(), ok bool, err error)
	// Claim takes the named lock exclusively, like Lock, for short locks
	// that many requests hold at once without holding a connection each.
	Claim(ctx context.Context, name string) (func(), error)
	// Waited reports whether another session waits for the named lock.
	Waited(ctx context.Context, name string) (bool, error)
	// Watch returns a channel that receives a value soon after any replica
	// appends, and a function that stops it.
	Watch() (<-chan struct{}, func())
}

// Names of the coordination locks.
const (
	lockTasks      = "tasks"
	lockProjection = "projection"
)

// A replica keeps the shared decision lock while authorizations keep
// coming. Every leaseCheck it asks whether another replica waits for the
// lock (a lifecycle change); if one does, or the lock has been held for
// maxLease whatever the answer, it lets new authorizations wait until the
// ones in flight finish and the lock is released, so the change gets its
// turn.
const (
	leaseCheck = 20 * time.Millisecond
	maxLease   = time.Second
)

// gate orders decisions. Alone, it is a read-write mutex. With a
// Coordinator, it also holds the database lock that orders them across
// replicas, and catches the state up to the ledger each time it takes it:
// so an authorization on one replica never follows a revocation on another
// without seeing it. Taking it then can fail (the database unreachable,
// the catch-up failing); the caller refuses with the error, which wraps
// ledger.ErrUnavailable, and holds nothing.
type gate struct {
	local sync.RWMutex
	s     *Service // nil: local only

	mu        sync.Mutex
	cond      *sync.Cond
	readers   int
	acquiring bool
	draining  bool
	shared    func() // releases the shared lock; nil when not held
	since     time.Time
	exclusive func()
}

func (g *gate) coordinated() bool { return g.s != nil && g.s.cfg.Shared != nil }

// lockWait bounds taking the replicas' decision lock and catching up under
// it.
const lockWait = 30 * time.Second

// Lock takes the gate exclusively, or returns why it could not.
func (g *gate) Lock(ctx context.Context) error {
	g.local.Lock()
	if !g.coordinated() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := g.s.cfg.Shared.Lock(ctx, lockTasks, false)
	if err != nil {
		g.local.Unlock()
		return fmt.Errorf("%w: taking the replicas' decision lock: %v", ledger.ErrUnavailable, err)
	}
	if err := g.s.catchUp(ctx); err != nil {
		unlock()
		g.local.Unlock()
		return fmt.Errorf("%w: catching up with the other replicas: %v", ledger.ErrUnavailable, err)
	}
	g.exclusive = unlock
	return nil
}

// Unlock releases an exclusive hold.
func (g *gate) Unlock() {
	if g.exclusive != nil {
		g.exclusive()
		g.exclusive = nil
	}
	g.local.Unlock()
}

// RLock takes the gate shared, or returns why it could not. With replicas
// the first reader takes the database lock for those that follow.
func (g *gate) RLock(ctx context.Context) error {
	g.local.RLock()
	if !g.coordinated() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch {
		case g.shared != nil && !g.draining:
			g.readers++
			return nil
		case g.shared == nil && !g.acquiring && g.readers == 0:
			g.acquiring = true
			g.mu.Unlock()
			unlock, err := g.acquireShared(ctx)
			g.mu.Lock()
			g.acquiring = false
			g.cond.Broadcast()
			if err != nil {
				g.local.RUnlock()
				return err
			}
			g.shared, g.since, g.draining = unlock, time.Now(), false
		default:
			g.cond.Wait()
		}
	}
}

func (g *gate) acquireShared(ctx context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := g.s.cfg.Shared.Lock(ctx, lockTasks, true)
	if err != nil {
		return nil, fmt.Errorf("%w: taking the replicas' decision lock: %v", ledger.ErrUnavailable, err)
	}
	if err := g.s.catchUp(ctx); err != nil {
		unlock()
		return nil, fmt.Errorf("%w: catching up with the other replicas: %v", ledger.ErrUnavailable, err)
	}
	return unlock, nil
}

// RUnlock releases a shared hold. The last reader out lets the database
// lock go; after the lease, new readers wait for that.
func (g *gate) RUnlock() {
	if g.coordinated() {
		g.mu.Lock()
		g.readers--
		if g.shared != nil && time.Since(g.since) > maxLease {
			g.draining = true
		}
		var release func()
		if g.readers == 0 {
			if g.shared != nil {
				release, g.shared, g.draining = g.shared, nil, false
			}
			g.cond.Broadcast()
		}
		g.mu.Unlock()
		if release != nil {
			release()
		}
	}
	g.local.RUnlock()
}

// watchWaiters sets draining when another replica waits for the lock
// this one holds shared.
func (g *gate) watchWaiters(stop <-chan struct{}) {
	t := time.NewTicker(leaseCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		held := g.shared != nil && !g.draining
		g.mu.Unlock()
		if !held {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		waited, err := g.s.cfg.Shared.Waited(ctx, lockTasks)
		cancel()
		if err != nil || waited {
			g.mu.Lock()
			if g.shared != nil {
				g.draining = true
			}
			g.mu.Unlock()
		}
	}
}

// held reports whether the caller's decision is covered by the database
// lock (always, without a Coordinator). The caller holds the gate. Taking
// the gate fails rather than return without the lock, so this is a second
// guard: commit refuses when it is false.
func (g *gate) held() bool {
	if !g.coordinated() {
		return true
	}
	if g.exclusive != nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shared != nil
}

// errNotCoordinated refuses a change made without the replicas' lock.
var errNotCoordinated = fmt.Errorf("%w: the replicas' decision lock is not held", ledger.ErrUnavailable)
