package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/writhq/writ/internal/event"
	"github.com/writhq/writ/internal/ledger"
)

// With replicas (Config.Shared), the state follows the ledger through a
// ledger.Follower: this replica's own commits handed over by the ledger's
// OnCommit (Follower().Committed), other replicas' events read from the
// store, in index order. The state is rebuilt at start, so its position in
// the log is kept in memory. Decisions catch it up under the replicas'
// lock (gate.go); the follower's own loop keeps it up between them.

// DefaultFollowInterval is the longest a replica goes without reading the
// ledger for other replicas' events when no notification arrives.
const DefaultFollowInterval = time.Second

// followGap is the least time between two catch-ups of the follower's
// loop, and between two writes of the projection tables: under load every
// commit notifies, and one catch-up per gap serves them all.
const followGap = 10 * time.Millisecond

// stateBodies are the bodies State keeps: a task's intent and a step-up's
// arguments.
var stateBodies = map[string][]string{
	ledger.TypeTaskRequested:     {"intent"},
	ledger.TypeApprovalRequested: {"arguments"},
}

// replica applies what the follower feeds to the state.
type replica struct{ s *Service }

// Position is the first index the state has not applied.
func (r replica) Position(context.Context) (uint64, error) {
	r.s.smu.Lock()
	defer r.s.smu.Unlock()
	return r.s.next, nil
}

// Apply applies entries in index order, skipping those already applied; an
// event the state cannot apply is skipped and logged, as at start. The
// hooks hear of what ended.
func (r replica) Apply(_ context.Context, ents []ledger.Entry) (uint64, error) {
	s := r.s
	var ends endings
	s.smu.Lock()
	for _, e := range ents {
		if e.Index < s.next {
			continue
		}
		if e.Index > s.next {
			next := s.next
			s.smu.Unlock()
			s.tell(ends)
			return next, fmt.Errorf("task state: fed entry %d while at %d", e.Index, next)
		}
		if k := s.st.Replay(e); k != nil {
			s.logSkipped(k)
		}
		s.next = e.Index + 1
		s.noteApplied(1)
		if e.Event.TaskID != "" && Relevant(e.Event.Type) && s.cfg.DB != nil {
			s.touched[e.Event.TaskID] = true
		}
		ends.note(e.Event)
	}
	next, touched := s.next, len(s.touched) > 0
	s.smu.Unlock()
	s.tell(ends)
	if touched {
		select {
		case s.projKick <- struct{}{}:
		default:
		}
	}
	return next, nil
}

// startFollowing starts the follower's loop, woken by wake (the store's
// notifications, which stop is to end) besides this replica's commits.
func (s *Service) startFollowing(wake <-chan struct{}, stop func()) error {
	f, err := ledger.NewFollower(ledger.FollowerConfig{Store: s.cfg.Store, Consumer: replica{s}, Name: "task state",
		Interval: s.cfg.FollowInterval, Settle: followGap, Wake: wake, Bodies: stateBodies, Logger: s.log})
	if err != nil {
		return err
	}
	s.follow = f
	ctx, cancel := context.WithCancel(context.Background())
	s.stopFollow = cancel
	go func() {
		defer close(s.followDone)
		defer stop()
		f.Run(ctx)
	}()
	return nil
}

// Follower is the state's follower of the ledger with replicas, nil
// without: the ledger's OnCommit must hand it this replica's commits
// (Committed). Its LastError says why following fails.
func (s *Service) Follower() *ledger.Follower { return s.follow }

// catchUp applies every event the store holds that the state has not seen.
func (s *Service) catchUp(ctx context.Context) error { return s.follow.CatchUp(ctx) }

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

// followAction catches up, with replicas, when the state does not know the
// action actionID: another replica may have authorized it a moment ago,
// both under the shared lock, which does not order them.
func (s *Service) followAction(ctx context.Context, actionID string) error {
	if s.cfg.Shared == nil {
		return nil
	}
	s.smu.Lock()
	_, known := s.st.actions.get(actionID)
	s.smu.Unlock()
	if known {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		return fmt.Errorf("%w: catching up with the other replicas: %v", ledger.ErrUnavailable, err)
	}
	return nil
}

// tend ends tasks whose time is up and, when this replica holds them,
// writes the projection tables, with replicas: after the state applied
// events, and at least every FollowInterval (so that a replica takes the
// tables over when the one writing them stops).
func (s *Service) tend() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FollowInterval)
	defer tick.Stop()
	var sweep <-chan time.Time
	if s.cfg.SweepInterval > 0 {
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-s.stop:
			if s.unlockProjection != nil {
				s.unlockProjection()
			}
			return
		case <-s.projKick:
		case <-tick.C:
		case <-sweep:
			s.sweep()
			continue
		case <-s.kick:
			s.sweep()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.projectFollowed(ctx); err != nil {
			s.log.ErrorContext(ctx, "writing projection rows failed", "err", err)
		}
		cancel()
		select {
		case <-s.stop:
		case <-time.After(followGap):
		}
	}
}

// projectFollowed writes the rows of the tasks touched since the last
// write, when this replica holds the projection lock (taking it if free).
// One replica writes the tables, in index order, so rows never go back.
func (s *Service) projectFollowed(ctx context.Context) error {
	if s.cfg.DB == nil {
		return nil
	}
	if s.unlockProjection != nil && s.projectionHeld.Err() != nil {
		// Another replica may write the tables already: leave them to it
		// until this one takes the lock again, and then rewrite them.
		s.log.WarnContext(ctx, "projection lock lost; no longer writing the tables", "err", context.Cause(s.projectionHeld))
		s.smu.Lock()
		s.proj = nil
		s.smu.Unlock()
		s.unlockProjection()
		s.unlockProjection, s.projectionHeld = nil, nil
	}
	if s.unlockProjection == nil {
		held, unlock, ok, err := s.cfg.Shared.TryLock(ctx, lockProjection)
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
		s.smu.Lock()
		err = p.writeAll(ctx, s.st, int64(s.next)-1)
		clear(s.touched)
		if err == nil {
			s.proj = p
		}
		s.smu.Unlock()
		if err != nil {
			// Tried again, whole, next time.
			unlock()
			return err
		}
		s.unlockProjection, s.projectionHeld = unlock, held
		return nil
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if len(s.touched) == 0 && s.proj.through >= int64(s.next)-1 {
		return nil
	}
	if err := s.proj.write(ctx, s.st, s.touched, int64(s.next)-1); err != nil {
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
	type claimed struct{ stepUp, action, taskID string }
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
				claims = append(claims, claimed{action: d.ActionID, taskID: ev.TaskID})
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
	var past []string
	s.smu.Lock()
	for _, c := range claims {
		if c.stepUp != "" {
			if a := s.st.approvals[c.stepUp]; a == nil || a.UsedBy != "" {
				s.smu.Unlock()
				release()
				return nil, newErr(ErrConflict, "step_up_used", "step-up %s was used by another call", c.stepUp)
			}
			continue
		}
		if _, ok := s.st.actions.get(c.action); ok {
			continue
		}
		if _, done := s.st.recent.task(c.action); done || s.st.spilled[c.taskID] == 0 || s.cfg.FindAction == nil {
			s.smu.Unlock()
			release()
			return nil, newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", c.action)
		}
		past = append(past, c.action)
	}
	s.smu.Unlock()
	// A call past the window (spill.go) is looked up again now that its
	// lock is held: another replica may have recorded its result since.
	for _, id := range past {
		auth, completed, err := s.actionEvents(ctx, id, true)
		if err == nil && (auth == nil || completed) {
			err = newErr(ErrConflict, "already_recorded", "the result of action %s is already recorded", id)
		}
		if err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}
