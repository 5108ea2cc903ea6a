package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// run is the sequencer: it takes whatever requests are waiting, up to
// MaxBatch, and commits them in one durable transaction. While one batch
// commits, the next one gathers; so the batch size grows with the load and
// the cost of each fsync is shared.
func (l *Ledger) run() {
	defer close(l.done)
	ctx := context.Background()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*request, 0, l.cfg.MaxBatch)
	lastN := 0
	for {
		select {
		case r, ok := <-l.reqs:
			if !ok {
				if l.tree.size() > l.lastSize {
					if err := l.commitCheckpoint(ctx); err != nil {
						l.log.Error("final checkpoint failed", "err", err)
					}
				}
				return
			}
			batch = append(batch[:0], r)
			n := len(r.entries)
		drain:
			for n < l.cfg.MaxBatch {
				select {
				case r, ok := <-l.reqs:
					if !ok {
						break drain
					}
					batch = append(batch, r)
					n += len(r.entries)
				default:
					break drain
				}
			}
			if l.cfg.CommitDelay > 0 && lastN > 1 && n < 2*lastN {
				n = l.gather(&batch, n, 2*lastN)
			}
			lastN = n
			l.commitBatch(ctx, batch)
			clear(batch)
			if l.tree.size() > l.lastSize {
				timer.Reset(l.cfg.CheckpointInterval - time.Since(l.lastCP))
			}
		case <-timer.C:
			if l.tree.size() > l.lastSize {
				if err := l.commitCheckpoint(ctx); err != nil {
					l.log.Error("checkpoint failed", "err", err)
					timer.Reset(l.cfg.CheckpointInterval + time.Millisecond)
				} else if l.tree.size() > l.lastSize {
					// Not signed: another writer's checkpoint was recent.
					timer.Reset(l.cfg.CheckpointInterval - time.Since(l.lastCP))
				}
			}
		}
	}
}

// checkpointDue reports whether a commit at now signs a checkpoint: with
// every batch (a zero CheckpointInterval), or once the interval has passed
// since the latest.
func (l *Ledger) checkpointDue(now time.Time) bool {
	return l.cfg.CheckpointInterval == 0 || now.Sub(l.lastCP) >= l.cfg.CheckpointInterval
}

// gather waits for more requests while appends come from several callers
// at once (the last batch had more than one): as long as they keep arriving,
// a gap of a fraction of CommitDelay apart, until the batch is four times
// the last one, and never longer than CommitDelay in all. One commit, and
// its fsync, is then shared by more callers, which under CPU-bound load
// costs less per event than committing as soon as anything waits. A lone
// appender never waits.
func (l *Ledger) gather(batch *[]*request, n, want int) int {
	// Go timers are coarse at this scale (a sub-millisecond timer can fire
	// a millisecond late), so this polls, yielding the processor between
	// polls to the goroutines that are about to append.
	start := time.Now()
	last := start
	gap := l.cfg.CommitDelay / 8
	for n < want && n < l.cfg.MaxBatch {
		select {
		case r, ok := <-l.reqs:
			if !ok {
				return n
			}
			*batch = append(*batch, r)
			n += len(r.entries)
			last = time.Now()
		default:
			now := time.Now()
			if now.Sub(last) >= gap || now.Sub(start) >= l.cfg.CommitDelay {
				return n
			}
			runtime.Gosched()
		}
	}
	return n
}

// commitBatch appends the batch to the tree, commits it and answers every
// caller. On failure the in-memory tree is rolled back and every caller gets
// ErrUnavailable: nothing in the batch is acknowledged.
func (l *Ledger) commitBatch(ctx context.Context, reqs []*request) {
	reqs = l.dropStaleErasures(ctx, reqs)
	if len(reqs) == 0 {
		return
	}
	began := time.Now()
	var err error
	var start uint64
	var lock lockTimes
	for attempt := 0; attempt < 3; attempt++ {
		if ss, ok := l.cfg.Store.(SharedStore); ok {
			start, err = l.tryCommitShared(ctx, ss, &reqs, &lock)
		} else {
			start, err = l.tryCommit(ctx, reqs)
		}
		if !errors.Is(err, ErrConflict) {
			break
		}
		// Another writer moved the log; catch up and sequence again.
		if lerr := l.load(ctx); lerr != nil {
			err = lerr
			break
		}
	}
	l.noteCommit(err)
	l.observe(began, reqs, lock, err)
	if err != nil {
		l.log.Error("ledger commit failed", "err", err, "events", len(reqs))
		if errors.Is(err, ErrStoreGone) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		} else {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		for _, r := range reqs {
			r.reply <- result{err: err}
		}
		return
	}
	if l.cfg.OnCommit != nil {
		first := start
		for _, r := range reqs {
			evs := r.events
			if r.linked != nil {
				evs = r.linked
			}
			l.cfg.OnCommit(first, evs, r.leaves, r.hashes)
			first += uint64(len(r.entries))
		}
	}
	for _, r := range reqs {
		r.reply <- result{first: start}
		start += uint64(len(r.entries))
	}
}

// dropStaleErasures answers ErrNotFound to erasures whose body is already
// gone, or is erased by an earlier request in the same batch, and returns the
// rest. Erase checks before queueing, but two erasures can race past that.
func (l *Ledger) dropStaleErasures(ctx context.Context, reqs []*request) []*request {
	var erasing map[BodyRef]bool
	kept := reqs[:0]
	for _, r := range reqs {
		stale := false
		for _, ref := range r.erase {
			if erasing == nil {
				erasing = map[BodyRef]bool{}
			}
			if erasing[ref] {
				stale = true
			} else if _, err := l.cfg.Store.ReadBody(ctx, ref); err != nil {
				stale = true
			}
		}
		if stale {
			r.reply <- result{err: fmt.Errorf("body is already erased: %w", ErrNotFound)}
			continue
		}
		for _, ref := range r.erase {
			erasing[ref] = true
		}
		kept = append(kept, r)
	}
	return kept
}

// stamp appends the requests' leaves to the tree from its current size
// and returns the batch that makes them durable: leaves, bodies with their
// indexes, erasures and the tiles that changed. Each event of a task gets
// its links here, where its index is known (chain.go); the heads it moves
// are held in l.heads.batch until the batch commits. On error the tree may
// hold some of the leaves; the caller restores it.
func (l *Ledger) stamp(reqs []*request) (*Batch, error) {
	start := l.tree.size()
	if l.heads.size != start {
		return nil, fmt.Errorf("the task chains cover %d events, the tree %d", l.heads.size, start)
	}
	clear(l.heads.batch)
	b := &Batch{Start: start, Leaves: make([][]byte, 0, len(reqs))}
	var hashes [][]byte
	if l.cfg.OnCommit != nil {
		n := 0
		for _, r := range reqs {
			n += len(r.entries)
		}
		hashes = make([][]byte, 0, n)
	}
	idx := start
	for _, r := range reqs {
		first := idx
		r.linked = nil
		for k, e := range r.entries {
			leaf, hash := e.leaf, e.hash
			if e.task != "" {
				var prev, deleg *uint64
				if p, ok := l.heads.head(e.task); ok {
					prev = &p
				}
				if e.delegation >= 0 {
					d := first + uint64(e.delegation)
					deleg = &d
				}
				if prev != nil || deleg != nil {
					leaf = withLinks(e.leaf, e.slots, deleg, prev)
					if l.cfg.OnCommit != nil {
						if r.linked == nil {
							r.linked = slices.Clone(r.events)
						}
						r.linked[k].Prev, r.linked[k].Delegation = prev, deleg
					}
				}
				hash = LeafHash(leaf)
				l.heads.batch[e.task] = idx
			}
			if err := l.tree.appendLeafHash(hash); err != nil {
				return nil, err
			}
			b.Leaves = append(b.Leaves, leaf)
			if l.cfg.OnCommit != nil {
				hashes = append(hashes, hash)
			}
			for _, body := range e.bodies {
				body.Index = idx
				b.Bodies = append(b.Bodies, body)
			}
			idx++
		}
		b.Erase = append(b.Erase, r.erase...)
		r.leaves = b.Leaves[len(b.Leaves)-len(r.entries):]
		if hashes != nil {
			r.hashes = hashes[len(hashes)-len(r.entries):]
		}
	}
	b.Tiles = l.tree.takeDirty()
	return b, nil
}

func (l *Ledger) tryCommit(ctx context.Context, reqs []*request) (uint64, error) {
	if err := l.syncHeads(ctx, l.cfg.Store, l.tree.size()); err != nil {
		return 0, err
	}
	saved := l.tree.clone()
	start := l.tree.size()
	b, err := l.stamp(reqs)
	if err != nil {
		l.tree = saved
		return 0, err
	}
	now := l.cfg.Now()
	due := l.checkpointDue(now)
	if due {
		cp, err := l.sign()
		if err != nil {
			l.tree = saved
			return 0, err
		}
		b.Checkpoint = cp
	}
	if err := l.cfg.Store.Commit(ctx, b); err != nil {
		l.tree = saved
		return 0, err
	}
	l.heads.commit(l.tree.size())
	if due {
		l.lastCP, l.lastSize, l.haveCP = now, b.Checkpoint.Size, true
	}
	return start, nil
}

// tryCommitShared stamps and commits the batch while holding a shared
// store's write lock. Leaves other writers appended since this ledger last
// looked are found under the lock (the size moved), and the tree is reloaded
// from the stored tiles before the batch is stamped on top: the batch never
// conflicts and no writer starves. Requests that arrived while it waited
// for the lock join the batch: the wait, which grows with the other
// writers' load, then buys bigger batches rather than fewer commits.
func (l *Ledger) tryCommitShared(ctx context.Context, ss SharedStore, batch *[]*request, lock *lockTimes) (uint64, error) {
	var start uint64
	var saved *tree
	var due bool
	var now time.Time
	called := time.Now()
	var granted, stamped time.Time
	var ahead AheadReader
	defer func() {
		switch {
		case ahead != nil && !stamped.IsZero():
			// One round trip: the wait and the hold are both inside it,
			// from the batch's sending to the COMMIT's answer.
			lock.wait, lock.held = 0, time.Since(stamped)
		case !granted.IsZero():
			lock.wait, lock.held = granted.Sub(called), time.Since(granted)
		}
	}()
	err := ss.Sequence(ctx, l.tree.size(), func(ctx context.Context, r LockedReader) (*Batch, error) {
		if saved != nil {
			// A second call, under the lock, after a batch stamped ahead of
			// it did not fit: stamp again from the same state.
			l.tree = saved
		}
		ahead, _ = r.(AheadReader)
		granted, stamped = time.Now(), time.Time{}
		if err := l.catchUp(ctx, r); err != nil {
			return nil, err
		}
		if err := l.syncHeads(ctx, r, l.tree.size()); err != nil {
			return nil, err
		}
		*batch = l.drainMore(ctx, *batch)
		reqs := *batch
		saved = l.tree.clone()
		start = l.tree.size()
		b, err := l.stamp(reqs)
		if err != nil {
			return nil, err
		}
		now = l.cfg.Now()
		due = l.checkpointDue(now)
		if lately, known := l.signedLately(r, now); known {
			due = !lately || ahead != nil && l.dueSoon(r)
		}
		if due {
			cp, err := l.sign()
			if err != nil {
				return nil, err
			}
			b.Checkpoint = cp
		}
		stamped = time.Now()
		return b, nil
	})
	if err != nil {
		if saved != nil {
			l.tree = saved
		}
		return 0, err
	}
	l.heads.commit(l.tree.size())
	if due && ahead != nil && !ahead.CheckpointStored() {
		due = false // a checkpoint signed ahead that was not yet due
	}
	if due {
		l.lastCP, l.lastSize, l.haveCP = now, l.tree.size(), true
	}
	return start, nil
}

// dueSoon reports, for a batch stamped before the lock, whether the
// checkpoint's age is already at least half the interval: its age when the
// lock is taken may then have reached the interval, so the batch carries a
// checkpoint, which the store keeps only if it has (AheadReader). Without
// one the batch would be refused whenever the interval passed on the way
// to the lock, and stamped again.
func (l *Ledger) dueSoon(r LockedReader) bool {
	_, age, _ := r.(CheckpointStater).LatestCheckpointState()
	return 2*age >= l.cfg.CheckpointInterval
}

// drainMore adds the requests already waiting to reqs, up to MaxBatch
// events, without blocking.
func (l *Ledger) drainMore(ctx context.Context, reqs []*request) []*request {
	n := 0
	for _, r := range reqs {
		n += len(r.entries)
	}
	for n < l.cfg.MaxBatch {
		select {
		case r, ok := <-l.reqs:
			if !ok {
				return reqs
			}
			if len(r.erase) > 0 && len(l.dropStaleErasures(ctx, []*request{r})) == 0 {
				continue
			}
			reqs = append(reqs, r)
			n += len(r.entries)
		default:
			return reqs
		}
	}
	return reqs
}

// signedLately reports, when a shared store knows its latest checkpoint
// (known), whether any writer stored one less than CheckpointInterval ago:
// the interval runs from the latest checkpoint any writer stored. If so,
// lastCP moves to that checkpoint's time.
func (l *Ledger) signedLately(r LockedReader, now time.Time) (lately, known bool) {
	cs, ok := r.(CheckpointStater)
	if !ok || l.cfg.CheckpointInterval <= 0 {
		return false, false
	}
	_, age, known := cs.LatestCheckpointState()
	if !known {
		return false, false
	}
	if ar, ok := r.(AheadReader); ok {
		ar.UseCheckpointInterval(l.cfg.CheckpointInterval)
	}
	if age < l.cfg.CheckpointInterval {
		l.lastCP = now.Add(-age)
		return true, true
	}
	return false, true
}

// catchUp reloads the tree's right edge when a shared store holds leaves
// this ledger has not seen (appended by another writer, or by this one in a
// commit whose outcome it could not learn). It runs under the store's write
// lock, so it reads only the size and the edge tiles (and takes the latest
// checkpoint's size from the reader when it knows it). The checkpoints were
// checked against the tree when the ledger opened, and those signed since
// are by writers holding the same key.
func (l *Ledger) catchUp(ctx context.Context, r LockedReader) error {
	if cs, ok := r.(CheckpointStater); ok {
		if size, _, known := cs.LatestCheckpointState(); known {
			l.lastSize, l.haveCP = size, true
		}
	}
	n, err := r.Size(ctx)
	if err != nil {
		return err
	}
	if n == l.tree.size() {
		return nil
	}
	t, err := loadTree(ctx, n, r.ReadTile)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTampered, err)
	}
	l.tree = t
	return nil
}

// commitCheckpoint stores a checkpoint of the current tree on its own.
func (l *Ledger) commitCheckpoint(ctx context.Context) error {
	if ss, ok := l.cfg.Store.(SharedStore); ok {
		var size uint64
		signed := false
		var ahead AheadReader
		err := ss.Sequence(ctx, l.tree.size(), func(ctx context.Context, r LockedReader) (*Batch, error) {
			ahead, _ = r.(AheadReader)
			signed = false
			if err := l.catchUp(ctx, r); err != nil {
				return nil, err
			}
			// What the lock returned for catching up serves the chains
			// now, not another query at the next batch.
			if err := l.syncHeads(ctx, r, l.tree.size()); err != nil {
				return nil, err
			}
			if l.haveCP && l.tree.size() <= l.lastSize {
				if ahead != nil {
					return nil, ErrLockNeeded // another writer's may, under the lock
				}
				return nil, nil // another writer's checkpoint covers it
			}
			if lately, _ := l.signedLately(r, l.cfg.Now()); lately {
				// The timer comes back when the shared interval ends (as
				// estimated ahead of the lock, no later than it does).
				return nil, nil
			}
			if ahead != nil {
				// The estimate says the interval has passed; only the lock
				// says whether it has (and, if not, when it will), so that
				// the timer does not commit a checkpoint that is not kept.
				return nil, ErrLockNeeded
			}
			cp, err := l.sign()
			if err != nil {
				return nil, err
			}
			size, signed = cp.Size, true
			return &Batch{Start: l.tree.size(), Checkpoint: cp}, nil
		})
		l.noteCommit(err)
		if err != nil {
			return err
		}
		if signed {
			l.lastCP, l.lastSize, l.haveCP = l.cfg.Now(), size, true
		}
		return nil
	}
	cp, err := l.sign()
	if err != nil {
		return err
	}
	b := &Batch{Start: l.tree.size(), Checkpoint: cp}
	err = l.cfg.Store.Commit(ctx, b)
	l.noteCommit(err)
	if err != nil {
		return err
	}
	l.lastCP, l.lastSize, l.haveCP = l.cfg.Now(), cp.Size, true
	return nil
}

func (l *Ledger) sign() (*StoredCheckpoint, error) {
	root, err := l.tree.root()
	if err != nil {
		return nil, err
	}
	n, err := signCheckpoint(l.cfg.Signer, l.origin, l.tree.size(), root)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint: %w", err)
	}
	return &StoredCheckpoint{Size: l.tree.size(), Note: n}, nil
}
