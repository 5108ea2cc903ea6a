package task

import (
	"context"
	"fmt"
	"sync"

	"github.com/writhq/writ/internal/ledger"
)

// With replicas, a decision that reads a task's history must see every
// call any replica recorded before the decision began: a call answered on
// one replica, then a call on another, is a sequence, and the second is
// decided on the first (a send after a confidential read). The shared
// decision lock alone does not give that, since replicas hold it together
// and catch up only when they take it; so each decision catches up first
// (freshen). A call under a task with limits does more: it takes a lock
// of its own across replicas, named for the topmost limited task of its
// chain, and holds it until its record is applied, so that the calls
// counted against a limit are counted one after the other on all
// replicas (orderCall).

// lockLimits prefixes the claim that orders the calls under a limited
// task across replicas.
const lockLimits = "limits/"

// orderCall readies the state for a decision on cred's task: without
// replicas, nothing; with them, the claim of a limited chain and a
// catch-up, or a catch-up alone. The returned function releases what was
// taken, once the call's events are applied. An error is ErrUnavailable:
// the call cannot be decided on a state known to be current.
func (s *Service) orderCall(ctx context.Context, taskID string) (func(), error) {
	if s.cfg.Shared == nil {
		return func() {}, nil
	}
	s.smu.Lock()
	root := ""
	if t := s.st.tasks[taskID]; t != nil {
		root = s.st.limitedRoot(t)
	}
	s.smu.Unlock()
	if root == "" {
		return func() {}, s.freshen(ctx)
	}
	unlock, err := s.cfg.Shared.Claim(ctx, lockLimits+root)
	if err != nil {
		return nil, fmt.Errorf("%w: ordering the calls of task %s: %v", ledger.ErrUnavailable, root, err)
	}
	if err := s.catchUp(ctx); err != nil {
		unlock()
		return nil, fmt.Errorf("%w: catching up with other replicas: %v", ledger.ErrUnavailable, err)
	}
	return unlock, nil
}

// freshen catches the state up, with replicas, before a decision that
// reads history; an error is ErrUnavailable.
func (s *Service) freshen(ctx context.Context) error {
	if s.cfg.Shared == nil {
		return nil
	}
	if err := s.fresh.freshen(ctx, s.catchUp); err != nil {
		return fmt.Errorf("%w: catching up with other replicas: %v", ledger.ErrUnavailable, err)
	}
	return nil
}

// freshener coalesces catch-ups. A decision needs the state caught up to
// at least what the store held when the decision began; any catch-up that
// starts after that serves it. So under load one catch-up (one read of the
// store's size, and the events since) serves every decision that arrived
// while the one before it ran, rather than one each.
type freshener struct {
	mu       sync.Mutex
	cond     *sync.Cond
	started  uint64 // catch-ups begun
	finished uint64 // the latest begun that completed
	running  bool
}

// freshen returns once a catch-up that began after the call completed, or
// with the error of the one it ran itself.
func (f *freshener) freshen(ctx context.Context, catchUp func(context.Context) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cond == nil {
		f.cond = sync.NewCond(&f.mu)
	}
	// A catch-up running now may have read the store's size before this
	// call began; the next one to start cannot have.
	target := f.started + 1
	for f.finished < target {
		if f.running {
			f.cond.Wait()
			continue
		}
		f.running = true
		f.started++
		mine := f.started
		f.mu.Unlock()
		err := catchUp(ctx)
		f.mu.Lock()
		f.running = false
		if err == nil && mine > f.finished {
			f.finished = mine
		}
		f.cond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}
