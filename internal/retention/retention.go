// Package retention erases payload bodies once their retention period has
// passed, as recorded erasures (ledger.body_erased with reason
// "retention"), and says what it will erase when (Plan).
//
// Rules name an event type, optionally one of its bodies and a data class,
// and a period; the first rule that matches a body decides. A body is
// erased once its event is older than its rule's period — never before the
// configured minimum, never while a legal hold covers the event's task
// (package task decides that, under the same gate that records holds), and
// once: each rule keeps a cursor in the store, the index up to which every
// due body it matches was erased or held, and a body already gone is left
// alone. The bodies of a task whose hold is lifted are looked at again.
// Leaves are never touched, so the tree still verifies.
//
// The design is in docs/retention.md.
package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/task"
)

// Rule keeps the bodies of events of Type — Body only, when set; of events
// of DataClass only, when set — for Keep after the event's time.
type Rule struct {
	Type, Body, DataClass string
	Keep                  time.Duration
	// KeepText is Keep as configured ("180d"), which erasures record.
	KeepText string
}

func (r Rule) String() string {
	s := r.Type
	if r.Body != "" {
		s += " " + r.Body
	}
	if r.DataClass != "" {
		s += " (" + r.DataClass + ")"
	}
	return s + " kept " + r.KeepText
}

// Tasks is what the enforcer asks of the task service; *task.Service is
// one.
type Tasks interface {
	// EraseUnheld erases the bodies named but those a legal hold covers,
	// returning which it erased and which it left.
	EraseUnheld(ctx context.Context, xs []task.BodyErasure) (erased, held []task.BodyErasure, err error)
	// TaskClass is the highest data class of a task's scope.
	TaskClass(taskID string) (string, bool)
	// ReleasedSince lists the holds lifted at index from or later.
	ReleasedSince(from uint64) []task.Release
	// Tree is a task and its descendants.
	Tree(taskID string) []string
	// Get returns a task (its Events: the indexes of its events).
	Get(taskID string) (task.Task, error)
	// Holds lists the holds in force.
	Holds() []task.HeldTask
}

// Locker lets one of the processes sharing a store sweep at a time
// (store/postgres); TryLock takes the named lock if it is free. held ends
// when the lock is released or lost.
type Locker interface {
	TryLock(ctx context.Context, name string) (held context.Context, unlock func(), ok bool, err error)
}

// LockName is the Locker lock a sweep holds.
const LockName = "retention"

// Config configures an Enforcer.
type Config struct {
	Rules []Rule
	// Minimum is the least time any body is kept; a rule shorter is
	// refused. MinimumText is it as configured.
	Minimum     time.Duration
	MinimumText string
	// Interval is the time between two sweeps of Run. Default 1h.
	Interval time.Duration
	// Store is the ledger's store; Cursors keeps each rule's cursor.
	Store   ledger.Store
	Cursors ledger.Cursors
	Tasks   Tasks
	// TaskEvents, when set, returns the indexes of every event of the
	// tasks named (the query index's TaskEvents, which also knows events
	// the task state does not keep, such as imported ones); by default
	// the task state's.
	TaskEvents func(ctx context.Context, taskIDs []string) ([]uint64, error)
	// Locker, when set, lets one process at a time sweep.
	Locker Locker
	// Batch is the most leaves read, and bodies erased, at a time.
	// Default 256.
	Batch  int
	Logger *slog.Logger
	// Now is the clock; tests set it.
	Now func() time.Time
}

// Validate reports a configuration that cannot work: config.RetentionConfig
// checks the same, and more, for the operator.
func (c Config) Validate() error {
	switch {
	case c.Store == nil || c.Cursors == nil || c.Tasks == nil:
		return errors.New("retention: no store, cursors or task service")
	case c.Minimum <= 0:
		return errors.New("retention: the minimum must be positive")
	case c.Interval <= 0:
		return errors.New("retention: the interval must be positive")
	case c.Batch <= 0:
		return errors.New("retention: Batch must be positive")
	}
	for i, r := range c.Rules {
		if r.Type == "" || r.Keep <= 0 {
			return fmt.Errorf("retention: rule %d has no type or period", i)
		}
		if r.Keep < c.Minimum {
			return fmt.Errorf("retention: rule %d (%s) keeps bodies for less than the minimum %s", i, r, c.MinimumText)
		}
	}
	return nil
}

// Enforcer applies the rules: Sweep once, or Run in the background.
type Enforcer struct {
	cfg   Config
	log   *slog.Logger
	rules []rule

	stop chan struct{}
	done chan struct{}
	kick chan struct{}
	once sync.Once

	// sweep serializes sweeps; mu guards last.
	sweep sync.Mutex
	mu    sync.Mutex
	last  *Result
	// classes caches the data class of authorized calls by task and
	// action ID, for their results (class.go); cmu guards it.
	cmu     sync.Mutex
	classes map[string]string
}

// rule is a Rule with the name of its cursor.
type rule struct {
	Rule
	cursor string
}

// ReleasedCursor is the name of the cursor of lifted holds: the index
// after the last task.released whose task's bodies were looked at again.
const ReleasedCursor = "retention/released"

// New prepares an enforcer; Run starts it.
func New(cfg Config) (*Enforcer, error) {
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Batch == 0 {
		cfg.Batch = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinimumText == "" {
		cfg.MinimumText = cfg.Minimum.String()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enforcer{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		kick: make(chan struct{}, 1), classes: map[string]string{}}
	// A rule's cursor is named for it and every rule before it: the first
	// rule that matches a body decides, so a change to an earlier rule
	// changes what a later one erases, and it starts over.
	h := sha256.New()
	for _, r := range cfg.Rules {
		fmt.Fprintf(h, "%q %q %q %d\n", r.Type, r.Body, r.DataClass, r.Keep)
		e.rules = append(e.rules, rule{Rule: r, cursor: "retention/" + hex.EncodeToString(h.Sum(nil))[:16]})
	}
	return e, nil
}

// Result is what one sweep did.
type Result struct {
	At time.Time `json:"at"`
	// Erased is how many bodies it erased; Held how many due bodies it
	// left for a legal hold.
	Erased int `json:"erased"`
	Held   int `json:"held"`
	// Skipped: another process holds the sweep's lock.
	Skipped bool   `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Run sweeps at once and then every Interval, until Close.
func (e *Enforcer) Run() {
	defer close(e.done)
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		res, err := e.Sweep(ctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			e.log.Error("retention sweep failed; retrying at the next interval", "err", err, "erased", res.Erased)
		case res.Erased > 0 || res.Held > 0:
			e.log.Info("retention sweep", "erased", res.Erased, "held", res.Held)
		}
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

// Kick asks Run to sweep now.
func (e *Enforcer) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Close stops Run (a sweep under way stops between two batches) and
// waits for it. Call it only after Run.
func (e *Enforcer) Close() {
	e.once.Do(func() { close(e.stop) })
	<-e.done
}

// Last returns what the latest sweep of this process did, if any.
func (e *Enforcer) Last() *Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		return nil
	}
	r := *e.last
	return &r
}

// Sweep erases every body that is due and not held: for each rule, the
// bodies of events from its cursor on that are older than its period; and
// the due bodies of tasks whose hold was lifted since the last sweep. With
// a Locker it does nothing (Skipped) while another process sweeps.
func (e *Enforcer) Sweep(ctx context.Context) (Result, error) {
	e.sweep.Lock()
	defer e.sweep.Unlock()
	now := e.cfg.Now().UTC()
	res := Result{At: now}
	err := e.sweepLocked(ctx, now, &res)
	if err != nil {
		res.Error = err.Error()
	}
	e.mu.Lock()
	e.last = &res
	e.mu.Unlock()
	return res, err
}

func (e *Enforcer) sweepLocked(ctx context.Context, now time.Time, res *Result) error {
	if len(e.rules) == 0 {
		return nil
	}
	if e.cfg.Locker != nil {
		held, unlock, ok, err := e.cfg.Locker.TryLock(ctx, LockName)
		if err != nil {
			return fmt.Errorf("taking the retention lock: %w", err)
		}
		if !ok {
			res.Skipped = true
			return nil
		}
		defer unlock()
		// A lost lock ends the sweep: another process may be sweeping.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(held, func() { cancel(context.Cause(held)) })()
	}
	for i := range e.rules {
		if err := e.sweepRule(ctx, i, now, res); err != nil {
			if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.Canceled) {
				err = cause // the lock lost, not a store's own failure
			}
			return fmt.Errorf("retention rule %d (%s): %w", i, e.rules[i].Rule, err)
		}
	}
	return e.sweepReleased(ctx, now, res)
}

// sweepRule erases the due bodies rule i decides, from its cursor on, and
// moves the cursor past them. It stops at the first event younger than
// the rule's period: the log is in time order, but for the few
// milliseconds concurrent appends may disagree, which the next sweep
// picks up.
func (e *Enforcer) sweepRule(ctx context.Context, i int, now time.Time, res *Result) error {
	r := e.rules[i]
	cutoff := now.Add(-r.Keep)
	next, err := e.cfg.Cursors.Cursor(ctx, r.cursor)
	if err != nil {
		return err
	}
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx) // a stop, or the lock lost
		}
		leaves, err := e.cfg.Store.ReadLeaves(ctx, next, next+uint64(e.cfg.Batch))
		if err != nil {
			return err
		}
		var due []task.BodyErasure
		through, young := next, false
		for k, leaf := range leaves {
			ent, err := ledger.ParseLeaf(next+uint64(k), leaf)
			if err != nil {
				return err
			}
			if !ent.Event.Time.Before(cutoff) {
				young = true
				break
			}
			through = ent.Index + 1
			e.note(ent)
			if ent.Event.Type != r.Type {
				continue
			}
			xs, err := e.dueBodies(ctx, ent, now, func(ri int) bool { return ri == i })
			if err != nil {
				return err
			}
			due = append(due, xs...)
		}
		if err := e.erase(ctx, due, res); err != nil {
			return err
		}
		if through > next {
			if err := e.cfg.Cursors.SetCursor(ctx, r.cursor, through); err != nil {
				return err
			}
		}
		if young || len(leaves) < e.cfg.Batch {
			return nil
		}
		next = through
	}
}

// sweepReleased looks again at the events of every task (and its
// descendants) whose hold was lifted since the last sweep: their due
// bodies were passed over while held.
func (e *Enforcer) sweepReleased(ctx context.Context, now time.Time, res *Result) error {
	from, err := e.cfg.Cursors.Cursor(ctx, ReleasedCursor)
	if err != nil {
		return err
	}
	for _, rel := range e.cfg.Tasks.ReleasedSince(from) {
		idx, err := e.taskEvents(ctx, e.cfg.Tasks.Tree(rel.TaskID))
		if err != nil {
			return err
		}
		var due []task.BodyErasure
		for _, i := range idx {
			leaves, err := e.cfg.Store.ReadLeaves(ctx, i, i+1)
			if err != nil {
				return err
			}
			if len(leaves) == 0 {
				continue
			}
			ent, err := ledger.ParseLeaf(i, leaves[0])
			if err != nil {
				return err
			}
			xs, err := e.dueBodies(ctx, ent, now, func(int) bool { return true })
			if err != nil {
				return err
			}
			due = append(due, xs...)
		}
		if err := e.erase(ctx, due, res); err != nil {
			return err
		}
		if err := e.cfg.Cursors.SetCursor(ctx, ReleasedCursor, rel.Index+1); err != nil {
			return err
		}
	}
	return nil
}

// taskEvents returns the indexes of the events of the tasks named.
func (e *Enforcer) taskEvents(ctx context.Context, ids []string) ([]uint64, error) {
	if e.cfg.TaskEvents != nil {
		return e.cfg.TaskEvents(ctx, ids)
	}
	var out []uint64
	for _, id := range ids {
		t, err := e.cfg.Tasks.Get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, t.Events...)
	}
	return out, nil
}

// dueBodies returns the erasures of ent's stored bodies that a rule
// accepted by want decides and whose period has passed by now.
func (e *Enforcer) dueBodies(ctx context.Context, ent ledger.Entry, now time.Time, want func(int) bool) ([]task.BodyErasure, error) {
	var out []task.BodyErasure
	for _, name := range slices.Sorted(maps.Keys(ent.Commitments)) {
		ri, err := e.ruleFor(ctx, ent, name)
		if err != nil {
			return nil, err
		}
		if ri < 0 || !want(ri) {
			continue
		}
		r := e.rules[ri]
		if now.Sub(ent.Event.Time) < r.Keep || now.Sub(ent.Event.Time) < e.cfg.Minimum {
			continue
		}
		ref := ledger.BodyRef{Index: ent.Index, Name: name}
		if _, err := e.cfg.Store.ReadBody(ctx, ref); errors.Is(err, ledger.ErrNotFound) {
			continue // erased already
		} else if err != nil {
			return nil, err
		}
		out = append(out, task.BodyErasure{TaskID: ent.Event.TaskID, Erasure: ledger.Erasure{
			Ref: ref, Reason: ledger.ReasonRetention,
			Retention: &ledger.RetentionRule{Type: r.Type, Body: r.Body, DataClass: r.DataClass, Keep: r.KeepText, Minimum: e.cfg.MinimumText},
		}})
	}
	return out, nil
}

// erase erases xs, Batch at a time, counting what was erased and held.
func (e *Enforcer) erase(ctx context.Context, xs []task.BodyErasure, res *Result) error {
	for len(xs) > 0 {
		n := min(len(xs), e.cfg.Batch)
		erased, held, err := e.cfg.Tasks.EraseUnheld(ctx, xs[:n])
		res.Erased += len(erased)
		res.Held += len(held)
		if err != nil {
			return err
		}
		xs = xs[n:]
	}
	return nil
}
