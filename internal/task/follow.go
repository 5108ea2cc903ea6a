package task

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// Coordinator lets several writ replicas share one store (store/postgres
// is one). With it, a Service follows the events other replicas append, in
// index order, and serializes decisions across replicas with a lock in the
// database: changes to a task's lifecycle take it exclusively,
// authorizations take it shared.
type Coordinator interface {
	// Lock takes the named lock, shared or exclusive, and returns the
	// function that releases it.
	Lock(ctx context.Context, name string, shared bool) (func(), error)
	// TryLock takes the named lock exclusively if it is free.
	TryLock(ctx context.Context, name string) (func(), bool, error)
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

// DefaultFollowInterval is the longest a replica goes without reading the
// ledger for other replicas' events when no notification arrives.
const DefaultFollowInterval = time.Second

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
// without seeing it.
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

// Lock takes the gate exclusively.
func (g *gate) Lock() {
	g.local.Lock()
	if !g.coordinated() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := g.s.cfg.Shared.Lock(ctx, lockTasks, false)
	if err != nil {
		g.s.log.Error("taking the replicas' decision lock failed; refusing changes", "err", err)
		return
	}
	if err := g.s.catchUp(ctx); err != nil {
		unlock()
		g.s.log.Error("catching up with other replicas failed; refusing changes", "err", err)
		return
	}
	g.exclusive = unlock
}

// Unlock releases an exclusive hold.
func (g *gate) Unlock() {
	if g.exclusive != nil {
		g.exclusive()
		g.exclusive = nil
	}
	g.local.Unlock()
}

// RLock takes the gate shared.
func (g *gate) RLock() {
	g.local.RLock()
	if !g.coordinated() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch {
		case g.shared != nil && !g.draining:
			g.readers++
			return
		case g.shared == nil && !g.acquiring && g.readers == 0:
			g.acquiring = true
			g.mu.Unlock()
			unlock := g.acquireShared()
			g.mu.Lock()
			g.acquiring = false
			g.cond.Broadcast()
			if unlock == nil {
				// Counted, but without the lock: held() is false and
				// commit refuses.
				g.readers++
				return
			}
			g.shared, g.since, g.draining = unlock, time.Now(), false
		default:
			g.cond.Wait()
		}
	}
}

func (g *gate) acquireShared() func() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := g.s.cfg.Shared.Lock(ctx, lockTasks, true)
	if err != nil {
		g.s.log.Error("taking the replicas' decision lock failed; refusing authorizations", "err", err)
		return nil
	}
	if err := g.s.catchUp(ctx); err != nil {
		unlock()
		g.s.log.Error("catching up with other replicas failed; refusing authorizations", "err", err)
		return nil
	}
	return unlock
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
// lock (always, without a Coordinator). The caller holds the gate.
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

// Committed is the ledger's OnCommit hook: it queues this replica's own
// events so the state applies them in index order without reading them
// back.
func (s *Service) Committed(first uint64, events []ledger.Event) {
	if s.cfg.Shared == nil {
		return
	}
	s.pmu.Lock()
	for i, ev := range events {
		if idx := first + uint64(i); int64(idx) > s.appliedHint {
			s.pending[idx] = ev
		}
	}
	s.pmu.Unlock()
}

// catchUp applies every event the store holds that the state has not seen.
func (s *Service) catchUp(ctx context.Context) error {
	n, err := s.cfg.Store.Size(ctx)
	if err != nil {
		return err
	}
	return s.syncTo(ctx, int64(n)-1)
}

// catchUpNow catches up outside any request's context and reports whether
// it succeeded.
func (s *Service) catchUpNow() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.catchUp(ctx); err != nil {
		s.log.Error("catching up with other replicas failed", "err", err)
		return false
	}
	return true
}

// followForRead catches up before a read, with replicas, so a read sees
// every change any replica acknowledged before it began. A failure leaves
// the read as of the last catch-up.
func (s *Service) followForRead() {
	if s.cfg.Shared != nil {
		s.catchUpNow()
	}
}

// syncTo applies events in index order until the state has seen target:
// this replica's own from pending, other replicas' read from the store.
func (s *Service) syncTo(ctx context.Context, target int64) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	var ends endings
	defer func() { s.tell(ends) }()
	for s.applied < target {
		next := uint64(s.applied + 1)
		s.pmu.Lock()
		ev, own := s.pending[next]
		s.pmu.Unlock()
		var batch []ledger.Entry
		if own {
			batch = []ledger.Entry{{Index: next, Event: ev}}
		} else {
			leaves, err := s.cfg.Store.ReadLeaves(ctx, next, uint64(target)+1)
			if err != nil {
				return fmt.Errorf("reading the ledger from %d: %w", next, err)
			}
			if len(leaves) == 0 {
				return fmt.Errorf("the ledger holds no event %d", next)
			}
			for i, leaf := range leaves {
				idx := next + uint64(i)
				s.pmu.Lock()
				ev, own := s.pending[idx]
				s.pmu.Unlock()
				if own {
					batch = append(batch, ledger.Entry{Index: idx, Event: ev})
					continue
				}
				e, err := ledger.ParseLeaf(idx, leaf)
				if err != nil {
					return err
				}
				if Relevant(e.Event.Type) {
					if err := s.loadBodies(ctx, &e); err != nil {
						return err
					}
				}
				batch = append(batch, e)
			}
		}
		s.smu.Lock()
		for _, e := range batch {
			if k := s.st.Replay(e); k != nil {
				s.logSkipped(k)
			}
			s.applied = int64(e.Index)
			if e.Event.TaskID != "" && Relevant(e.Event.Type) {
				s.touched[e.Event.TaskID] = true
			}
			ends.note(e.Event)
		}
		s.smu.Unlock()
		s.pmu.Lock()
		for _, e := range batch {
			delete(s.pending, e.Index)
		}
		s.appliedHint = s.applied
		s.pmu.Unlock()
	}
	return nil
}

// follower keeps the state up with other replicas: woken by the store's
// notifications, and at least every FollowInterval. The replica holding
// the projection lock also writes the projection tables.
func (s *Service) follower(wake <-chan struct{}) {
	defer close(s.followDone)
	tick := time.NewTicker(s.cfg.FollowInterval)
	defer tick.Stop()
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	if s.cfg.SweepInterval <= 0 {
		sweep.Stop()
	}
	for {
		select {
		case <-s.stop:
			if s.unlockProjection != nil {
				s.unlockProjection()
			}
			return
		case <-wake:
		case <-tick.C:
		case <-sweep.C:
			s.sweepIfDue()
			continue
		case <-s.kick:
			s.sweepIfDue()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.catchUp(ctx); err != nil {
			s.log.ErrorContext(ctx, "following other replicas' events failed; retrying", "err", err)
		} else if err := s.projectFollowed(ctx); err != nil {
			s.log.ErrorContext(ctx, "writing projection rows failed", "err", err)
		}
		cancel()
		// Under load every commit notifies; one catch-up per followGap
		// serves them all (a wake that comes meanwhile waits its turn).
		select {
		case <-s.stop:
		case <-time.After(followGap):
		}
	}
}

// followGap is the least time between two catch-ups of the follower.
const followGap = 10 * time.Millisecond

// sweepIfDue runs Sweep only when some task's time is up, so idle replicas
// do not take the exclusive lock every tick.
func (s *Service) sweepIfDue() {
	now := s.now()
	due := false
	s.smu.Lock()
	for _, id := range s.st.order {
		t := s.st.tasks[id]
		if t.State == StateActive && !now.Before(t.ExpiresAt) {
			due = true
		} else if t.State == StatePendingApproval {
			if a := s.st.approvals[t.ApprovalID]; a != nil && now.After(a.ExpiresAt) {
				due = true
			}
		}
		if due {
			break
		}
	}
	s.smu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Sweep(ctx); err != nil {
		s.log.ErrorContext(ctx, "expiring tasks failed; retrying", "err", err)
	}
}

// projectFollowed writes the rows of the tasks touched since the last
// write, when this replica holds the projection lock (taking it if free).
// One replica writes the tables, in index order, so rows never go back.
func (s *Service) projectFollowed(ctx context.Context) error {
	if s.cfg.DB == nil {
		return nil
	}
	if s.unlockProjection == nil {
		unlock, ok, err := s.cfg.Shared.TryLock(ctx, lockProjection)
		if err != nil || !ok {
			// Another replica writes the tables.
			s.smu.Lock()
			clear(s.touched)
			s.smu.Unlock()
			return err
		}
		p, err := openProjection(ctx, s.cfg.DB, dialectOf(s.cfg.Store))
		if err != nil {
			unlock()
			return err
		}
		s.unlockProjection = unlock
		s.smu.Lock()
		err = p.writeAll(ctx, s.st, s.applied)
		clear(s.touched)
		s.smu.Unlock()
		if err != nil {
			return err
		}
		s.proj = p
		return nil
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if len(s.touched) == 0 && s.proj.through >= s.applied {
		return nil
	}
	if err := s.proj.write(ctx, s.st, s.touched, s.applied); err != nil {
		return err
	}
	clear(s.touched)
	return nil
}

// claim guards what an authorization consumes, which the shared decision
// lock alone does not: a granted step-up (used once) and an action's result
// (recorded once). For each, it takes a lock of its own across replicas,
// catches the state up and checks that no other replica got there first.
// The returned function releases the locks once the events are applied.
func (s *Service) claim(ctx context.Context, events []ledger.Event) (func(), error) {
	type claimed struct{ stepUp, action string }
	var claims []claimed
	for _, ev := range events {
		switch ev.Type {
		case ledger.TypeActionAuthorized:
			var d event.ActionDecided
			if json.Unmarshal(ev.Data, &d) == nil && d.StepUp != "" {
				claims = append(claims, claimed{stepUp: d.StepUp})
			}
		case ledger.TypeActionCompleted:
			var d event.ActionCompleted
			if json.Unmarshal(ev.Data, &d) == nil && d.ActionID != "" {
				claims = append(claims, claimed{action: d.ActionID})
			}
		}
	}
	if len(claims) == 0 {
		return func() {}, nil
	}
	var unlocks []func()
	release := func() {
		for _, u := range unlocks {
			u()
		}
	}
	for _, c := range claims {
		name := "step-up/" + c.stepUp
		if c.action != "" {
			name = "result/" + c.action
		}
		u, err := s.cfg.Shared.Claim(ctx, name)
		if err != nil {
			release()
			return nil, fmt.Errorf("%w: %v", ledger.ErrUnavailable, err)
		}
		unlocks = append(unlocks, u)
	}
	if err := s.catchUp(ctx); err != nil {
		release()
		return nil, fmt.Errorf("%w: %v", ledger.ErrUnavailable, err)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	for _, c := range claims {
		if c.stepUp != "" {
			if a := s.st.approvals[c.stepUp]; a == nil || a.UsedBy != "" {
				release()
				return nil, newErr(ErrConflict, "step_up_used", "step-up %s was used by another call", c.stepUp)
			}
		} else if a := s.st.actions[c.action]; a == nil || a.Completed {
			release()
			return nil, newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", c.action)
		}
	}
	return release, nil
}
