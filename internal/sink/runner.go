package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/internal/config"
	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/metrics"
)

// runner is one sink: its follower of the ledger, its transport, and what
// it reports.
type runner struct {
	cfg    config.SinkConfig
	set    Config
	tr     transport
	enc    *encoder
	follow *ledger.Follower
	log    *slog.Logger

	lag                 metrics.Gauge
	delivered, failures prometheus.Counter

	// size is the largest size of the log this runner knows of; cursor
	// its position as last read or moved (the first event not delivered).
	size, cursor atomic.Uint64
	active       atomic.Bool
	lastErr      atomic.Pointer[string]
}

func newRunner(ctx context.Context, sc config.SinkConfig, cfg Config, tr transport) (*runner, error) {
	r := &runner{cfg: sc, set: cfg, tr: tr, enc: newEncoder(sc.Format, cfg.Origin),
		log: cfg.Logger.With("sink", sc.Name), lag: cfg.Metrics.SinkLag(sc.Name)}
	consumer, err := ledger.CursorConsumer(cfg.Cursors, CursorName(sc.Name), r.apply)
	if err != nil {
		return nil, err
	}
	// Every message carries the leaf, or its hash: the follower keeps the
	// leaves of the commits it is handed, and reads the rest from the
	// store with theirs.
	fc := ledger.FollowerConfig{Store: cfg.Store, Consumer: consumer, Name: "sink " + sc.Name, Batch: sc.Batch,
		Settle: cfg.Settle, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Logger: r.log, Leaves: true}
	if r.follow, err = ledger.NewFollower(fc); err != nil {
		return nil, err
	}
	// The lag is known from the start, on every replica.
	if err := r.readPosition(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// readPosition reads the sink's cursor and the log's size from the store.
func (r *runner) readPosition(ctx context.Context) error {
	pos, err := r.set.Cursors.Cursor(ctx, CursorName(r.cfg.Name))
	if err != nil {
		return fmt.Errorf("reading the sink's cursor: %w", err)
	}
	size, err := r.set.Store.Size(ctx)
	if err != nil {
		return fmt.Errorf("reading the log's size: %w", err)
	}
	r.cursor.Store(pos)
	r.grew(size)
	return nil
}

// apply delivers entries; the cursor consumer moves the cursor past them
// once it returns nil. A delivery begun is not cut short by a stop (ctx's
// end), only by the sink's timeout: a destination that took the batch
// then sees its cursor recorded, and the process that runs the sink next
// does not send it again.
func (r *runner) apply(ctx context.Context, entries []ledger.Entry) error {
	msgs := make([]Message, len(entries))
	for i, e := range entries {
		m, err := r.enc.encode(e)
		if err != nil {
			return fmt.Errorf("encoding event %d: %w", e.Index, err)
		}
		msgs[i] = m
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	err := r.tr.deliver(dctx, msgs)
	cancel()
	if err != nil {
		r.failures.Inc()
		msg := err.Error()
		r.lastErr.Store(&msg)
		return err
	}
	r.delivered.Add(float64(len(msgs)))
	r.lastErr.Store(nil)
	last := entries[len(entries)-1].Index
	r.grew(last + 1)
	r.moved(last + 1)
	return nil
}

// grew notes that the log holds at least n entries.
func (r *runner) grew(n uint64) {
	for {
		old := r.size.Load()
		if n <= old || r.size.CompareAndSwap(old, n) {
			break
		}
	}
	r.report()
	r.follow.Notify()
}

// moved notes the sink's position.
func (r *runner) moved(pos uint64) {
	r.cursor.Store(pos)
	r.report()
}

func (r *runner) lagging() uint64 {
	// The follower reads the log's size as it catches up: it may know of
	// other replicas' commits before this runner does.
	size := max(r.size.Load(), r.follow.Position()+r.follow.Lag())
	pos := r.cursor.Load()
	return size - min(size, pos)
}

func (r *runner) report() { r.lag.Set(float64(r.lagging())) }

func (r *runner) status() Status {
	st := Status{Name: r.cfg.Name, Lag: r.lagging(), Bound: r.cfg.LagBound, Active: r.active.Load()}
	if p := r.lastErr.Load(); p != nil {
		st.Error = *p
	}
	return st
}

// run runs the sink until ctx is done: at once with one server, and on a
// shared store while this process holds the sink's lock; until then it
// only reads the sink's position, so that its lag is reported here too.
// A lock found lost stops the sink (another process may run it already)
// until this process takes the lock again.
func (r *runner) run(ctx context.Context) {
	if r.set.Locker == nil {
		r.runActive(ctx)
		return
	}
	for {
		held, unlock, ok := r.awaitLock(ctx)
		if !ok {
			return
		}
		hctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(held, cancel)
		r.runActive(hctx)
		stop()
		cancel()
		unlock()
		if ctx.Err() != nil {
			return
		}
		r.log.WarnContext(ctx, "sink stopped: its lock was lost; it runs again once this process takes the lock",
			"err", context.Cause(held))
	}
}

// runActive runs the sink's follower until ctx is done, woken by the
// store's appends, and reports the sink active meanwhile.
func (r *runner) runActive(ctx context.Context) {
	r.active.Store(true)
	defer r.active.Store(false)
	r.log.InfoContext(ctx, "sink running", "type", r.cfg.Type, "format", r.cfg.Format, "from", r.cursor.Load())
	if r.set.Watch != nil {
		wake, stop := r.set.Watch()
		defer stop()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-wake:
					r.follow.Notify()
				}
			}
		}()
	}
	r.follow.Run(ctx)
}

// awaitLock takes the sink's lock, trying again every LockRetry while
// another process holds it.
func (r *runner) awaitLock(ctx context.Context) (context.Context, func(), bool) {
	for {
		held, unlock, ok, err := r.set.Locker.TryLock(ctx, CursorName(r.cfg.Name))
		if ctx.Err() != nil {
			if ok {
				unlock()
			}
			return nil, nil, false
		}
		switch {
		case err != nil:
			r.log.WarnContext(ctx, "sink: cannot take its lock; trying again", "err", err)
		case ok:
			// Where the last process to run it stopped.
			if err := r.readPosition(ctx); err != nil {
				r.log.WarnContext(ctx, "sink: cannot read its position", "err", err)
			}
			return held, unlock, true
		default:
			// Another replica runs the sink: follow its progress.
			if err := r.readPosition(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "sink: cannot read its position", "err", err)
			}
		}
		t := time.NewTimer(r.set.LockRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, false
		case <-t.C:
		}
	}
}
