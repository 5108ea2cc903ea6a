package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Consumer is what a Follower feeds: a reader of the log that keeps its own
// place in it. Where that place is kept is the consumer's business: in
// memory (state rebuilt at start), in the transaction that applies the
// entries (an index's high-water mark), or as a named cursor in the store
// (CursorConsumer).
type Consumer interface {
	// Position returns the index of the first entry the consumer has not
	// applied: where following resumes. The Follower reads it at the
	// start of every catch-up, and again after an error.
	Position(ctx context.Context) (uint64, error)
	// Apply applies entries, consecutive and in index order, the first at
	// the consumer's position. It returns the consumer's new position:
	// normally one past the last entry; further when it learned that
	// others applied more (replicas sharing one index); lower if it was
	// moved back. The Follower never counts an entry as applied before
	// Apply says so: after an error it delivers again from Position, so
	// Apply must tolerate entries it has already applied (at least once).
	Apply(ctx context.Context, entries []Entry) (next uint64, err error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// Store is the log followed; Consumer is fed from it.
	Store    Store
	Consumer Consumer
	// Name names the follower in errors and logs.
	Name string
	// Batch is the most entries one Apply receives. Default 1000.
	Batch int
	// HandOff is the most committed entries held for the follower
	// (Committed); past it the oldest are let go and read from the store
	// instead. Default 16384, about a second of commits at the decision
	// API's peak.
	HandOff int
	// Interval is the longest Run goes without looking at the store for
	// entries nobody told it of. Default 1s.
	Interval time.Duration
	// Settle is the least time between two catch-ups of Run: entries that
	// arrive meanwhile are applied together, in fewer batches. Zero
	// catches up on every wake.
	Settle time.Duration
	// Wake, when set, receives a value when the store has grown (the
	// notifications of a store several writers share).
	Wake <-chan struct{}
	// Bodies names, for each event type that needs them, the bodies the
	// consumer reads: they are kept on committed entries and loaded from
	// the store for the others (an erased body is left out). Entries of
	// other types come without bodies.
	Bodies map[string][]string
	// Leaves keeps each committed entry's leaf (Entry.Leaf) in the
	// hand-off, for a consumer that sends or hashes leaves: it then reads
	// no more from the store than any other. Entries read from the store
	// always carry theirs.
	Leaves bool
	// MinBackoff and MaxBackoff bound the wait of Run before it retries
	// after an error, doubling from the one to the other. Defaults 100ms
	// and 10s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c FollowerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("ledger follower: no store")
	case c.Consumer == nil:
		return errors.New("ledger follower: no consumer")
	case c.Batch <= 0:
		return errors.New("ledger follower: Batch must be positive")
	case c.HandOff <= 0:
		return errors.New("ledger follower: HandOff must be positive")
	case c.Interval <= 0:
		return errors.New("ledger follower: Interval must be positive")
	case c.Settle < 0:
		return errors.New("ledger follower: Settle must not be negative")
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return errors.New("ledger follower: want 0 < MinBackoff <= MaxBackoff")
	}
	return nil
}

// Follower feeds a Consumer the log in index order, at least once: this
// process's own commits from a bounded hand-off (Committed), everything
// else (other writers' entries, what came before a restart, what the
// hand-off let go) from the store, in batches. Run follows in the
// background; CatchUp and SyncTo bring the consumer up to a point before
// their caller goes on. Catch-ups take turns: one at a time applies.
//
// Entries from the store carry their Leaf and Commitments; entries handed
// over by Committed carry the event as committed (Time in UTC, Bodies as
// FollowerConfig.Bodies asks), their Leaf when FollowerConfig.Leaves asks
// (and its Hash, when Committed was given it), and no Commitments.
type Follower struct {
	cfg  FollowerConfig
	hand handoff
	// turn serializes catch-ups: holding it is sending on it.
	turn chan struct{}
	kick chan struct{}
	// pos is the consumer's position as last reported; size the largest
	// size of the log seen (read, or committed here).
	pos, size atomic.Uint64
	// lastErr is the outcome of the latest catch-up (nil: it succeeded).
	lastErr atomic.Pointer[error]
	// running is held by Run: one at a time.
	running sync.Mutex
}

// NewFollower returns a follower of cfg.Store feeding cfg.Consumer. It
// reads nothing until CatchUp, SyncTo or Run.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.HandOff == 0 {
		cfg.HandOff = 16384
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.Name == "" {
		cfg.Name = "ledger follower"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Follower{cfg: cfg, turn: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	f.hand.max = cfg.HandOff
	return f, nil
}

// Committed hands the follower events this process's ledger has just made
// durable, from index first on, with their leaves and the leaves' hashes
// (ledger.Config.OnCommit). It never blocks: past HandOff entries held,
// the oldest are let go, to be read from the store. A follower that keeps
// leaves hands each entry on with its leaf and its hash (Entry.Hash), so
// that its consumer need not hash the leaf again; hashes may be nil.
func (f *Follower) Committed(first uint64, events []Event, leaves, hashes [][]byte) {
	switch {
	case !f.cfg.Leaves:
		f.hand.add(first, events, nil, nil, f.keep)
	case len(leaves) == len(events):
		if len(hashes) != len(events) {
			hashes = nil
		}
		f.hand.add(first, events, leaves, hashes, f.keep)
	}
	// A consumer of leaves handed events without theirs reads them from
	// the store.
	f.seen(first + uint64(len(events)))
	f.Notify()
}

// keep is what the hand-off holds of a committed event: the bodies the
// consumer reads, and its time as a leaf records it.
func (f *Follower) keep(ev Event) Event {
	ev.Time = ev.Time.UTC()
	names := f.cfg.Bodies[ev.Type]
	if len(names) == 0 || len(ev.Bodies) == 0 {
		ev.Bodies = nil
		return ev
	}
	kept := make(map[string][]byte, len(names))
	for _, n := range names {
		if b, ok := ev.Bodies[n]; ok {
			kept[n] = b
		}
	}
	ev.Bodies = kept
	return ev
}

// Notify tells Run that the log has grown. It never blocks.
func (f *Follower) Notify() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// seen notes that the log holds at least n entries.
func (f *Follower) seen(n uint64) {
	for {
		old := f.size.Load()
		if n <= old || f.size.CompareAndSwap(old, n) {
			return
		}
	}
}

// Position returns the consumer's position as of the latest catch-up: the
// index of the first entry it has not applied.
func (f *Follower) Position() uint64 { return f.pos.Load() }

// Lag returns how many entries the log holds, as far as the follower knows,
// beyond its position.
func (f *Follower) Lag() uint64 {
	pos, size := f.pos.Load(), f.size.Load()
	return size - min(size, pos)
}

// LastError returns why the latest catch-up failed, or nil when it
// succeeded.
func (f *Follower) LastError() error {
	if p := f.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// CatchUp applies every entry the store holds now: when it returns nil,
// the consumer has applied everything committed before it was called.
func (f *Follower) CatchUp(ctx context.Context) error {
	if err := f.await(ctx); err != nil {
		return err
	}
	defer f.release()
	size, err := f.cfg.Store.Size(ctx)
	if err != nil {
		return f.note(ctx, fmt.Errorf("%s: reading the log's size: %w", f.cfg.Name, err))
	}
	f.seen(size)
	return f.note(ctx, f.syncTo(ctx, size))
}

// SyncTo applies every entry before index n, which the store must hold.
func (f *Follower) SyncTo(ctx context.Context, n uint64) error {
	if err := f.await(ctx); err != nil {
		return err
	}
	defer f.release()
	return f.note(ctx, f.syncTo(ctx, n))
}

// await waits for the turn to catch up.
func (f *Follower) await(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case f.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *Follower) release() { <-f.turn }

// note records the outcome of a catch-up for LastError and returns err. A
// caller giving up (its context done) says nothing about the follower.
func (f *Follower) note(ctx context.Context, err error) error {
	switch {
	case err == nil:
		if f.lastErr.Load() != nil {
			f.lastErr.Store(nil)
		}
	case ctx.Err() == nil:
		f.lastErr.Store(&err)
	}
	return err
}

// syncTo applies entries until the consumer's position is n or beyond.
// The caller holds the turn.
func (f *Follower) syncTo(ctx context.Context, n uint64) error {
	pos, err := f.cfg.Consumer.Position(ctx)
	if err != nil {
		return fmt.Errorf("%s: reading its position: %w", f.cfg.Name, err)
	}
	f.pos.Store(pos)
	for pos < n {
		// A consumer may finish a batch past ctx's end (CursorConsumer
		// records what it applied): a stopped follower starts no other.
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := f.next(ctx, pos, n)
		if err != nil {
			return err
		}
		next, err := f.cfg.Consumer.Apply(ctx, ents)
		if err != nil {
			return fmt.Errorf("%s: applying the entries from %d: %w", f.cfg.Name, pos, err)
		}
		if next == pos {
			return fmt.Errorf("%s: the consumer applied none of the entries from %d", f.cfg.Name, pos)
		}
		pos = next
		f.pos.Store(pos)
		// Between batches, let waiting requests run first: following is
		// background work and should not come in long bursts.
		runtime.Gosched()
	}
	return nil
}

// next returns the entries to apply from pos on: the held run that starts
// there, or else at most Batch entries before n read from the store, with
// the held ones among them taken as they were committed.
func (f *Follower) next(ctx context.Context, pos, n uint64) ([]Entry, error) {
	held := f.hand.take(pos, f.cfg.Batch)
	if len(held) > 0 && held[0].Index == pos {
		k := 1
		for k < len(held) && held[k].Index == pos+uint64(k) {
			k++
		}
		return held[:k], nil
	}
	end := min(n, pos+uint64(f.cfg.Batch))
	// Leaves held from some point to end need not be read.
	k := len(held) - 1
	for k >= 0 && held[k].Index >= end {
		k--
	}
	for ; k >= 0 && held[k].Index == end-1; k-- {
		end--
	}
	leaves, err := f.cfg.Store.ReadLeaves(ctx, pos, end)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the log from %d: %w", f.cfg.Name, pos, err)
	}
	if len(leaves) == 0 {
		return nil, fmt.Errorf("%s: the log holds no entry %d", f.cfg.Name, pos)
	}
	ents := make([]Entry, len(leaves))
	for k, leaf := range leaves {
		idx := pos + uint64(k)
		for len(held) > 0 && held[0].Index < idx {
			held = held[1:]
		}
		if len(held) > 0 && held[0].Index == idx {
			ents[k] = held[0]
			continue
		}
		if ents[k], err = ParseLeaf(idx, leaf); err != nil {
			return nil, fmt.Errorf("%s: %w", f.cfg.Name, err)
		}
		if err := f.loadBodies(ctx, &ents[k]); err != nil {
			return nil, err
		}
	}
	return ents, nil
}

// loadBodies reads the bodies of e that Bodies names for its type.
func (f *Follower) loadBodies(ctx context.Context, e *Entry) error {
	if err := ReadBodies(ctx, f.cfg.Store, e, f.cfg.Bodies[e.Event.Type]...); err != nil {
		return fmt.Errorf("%s: %w", f.cfg.Name, err)
	}
	return nil
}

// ReadBodies reads into e.Event.Bodies those of the bodies names that e's
// leaf commits to, from st. An erased body is left out.
func ReadBodies(ctx context.Context, st Store, e *Entry, names ...string) error {
	for _, name := range names {
		if _, ok := e.Commitments[name]; !ok {
			continue
		}
		b, err := st.ReadBody(ctx, BodyRef{Index: e.Index, Name: name})
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return fmt.Errorf("reading body %q of entry %d: %w", name, e.Index, err)
		}
		if e.Event.Bodies == nil {
			e.Event.Bodies = map[string][]byte{}
		}
		e.Event.Bodies[name] = b.Data
	}
	return nil
}

// Run catches up at once, then whenever Committed or Notify is called, the
// Wake channel receives, or Interval passes, until ctx is done; it returns
// ctx's error. After an error it logs, keeps it for LastError, and tries
// again after a backoff. One Run at a time.
func (f *Follower) Run(ctx context.Context) error {
	f.running.Lock()
	defer f.running.Unlock()
	tick := time.NewTicker(f.cfg.Interval)
	defer tick.Stop()
	wake := f.cfg.Wake
	var backoff time.Duration
	for {
		err := f.CatchUp(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := f.cfg.Settle
		if err != nil {
			backoff = min(max(2*backoff, f.cfg.MinBackoff), f.cfg.MaxBackoff)
			wait = backoff
			f.cfg.Logger.ErrorContext(ctx, "following the ledger failed; retrying", "follower", f.cfg.Name, "err", err, "retry_in", backoff)
		} else if backoff > 0 {
			backoff = 0
			f.cfg.Logger.InfoContext(ctx, "following the ledger again", "follower", f.cfg.Name, "position", f.Position())
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err != nil {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.kick:
		case _, ok := <-wake:
			if !ok {
				wake = nil
			}
		case <-tick.C:
		}
	}
}
