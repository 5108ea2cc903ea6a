package ledger

import (
	"context"
	"errors"
)

// ErrStoreGone reports a store whose file was deleted or replaced while
// the ledger had it open: what it commits from then on would be lost, so
// it commits nothing until the process restarts on the right file.
var ErrStoreGone = errors.New("the store's database file was deleted or replaced while it was open")

// HealthChecker is implemented by a Store that can tell cheaply, without
// writing, whether it can still make a batch durable: its file is still
// the one it opened, its database answers. Ready calls it.
type HealthChecker interface {
	// Healthy returns nil or why the store cannot record now.
	Healthy(ctx context.Context) error
}

// Prober is implemented by a Store that can commit a minimal durable
// transaction of its own, beside the log, to learn whether writes succeed
// again after one failed (a disk that was full, say).
type Prober interface {
	// Probe commits a small write durably, or returns why it could not.
	Probe(ctx context.Context) error
}

// commitState is the outcome of the latest commit (nil: it succeeded).
type commitState struct{ err error }

// noteCommit records the outcome of a commit for Ready.
func (l *Ledger) noteCommit(err error) {
	if err == nil {
		if l.lastCommit.Load() != nil {
			l.lastCommit.Store(nil)
		}
		return
	}
	if errors.Is(err, ErrStoreGone) && l.gone.CompareAndSwap(false, true) {
		l.log.Error("THE LEDGER'S DATABASE FILE WAS DELETED OR REPLACED under the running server: nothing more is acknowledged "+
			"(every decision is denied, every append refused) until writ restarts on the right file; restore it from backup or move the replacement away, then restart",
			"err", err)
	}
	l.lastCommit.Store(&commitState{err: err})
}

// Ready reports whether the ledger can record right now: nil when the
// store is healthy (HealthChecker) and the latest commit succeeded. After
// a failed commit it stays not ready until a commit succeeds; when the
// store is a Prober, Ready commits a probe of its own to find out, so that
// readiness comes back without waiting for traffic that a load balancer
// holds back. /readyz answers with it.
func (l *Ledger) Ready(ctx context.Context) error {
	if hc, ok := l.cfg.Store.(HealthChecker); ok {
		if err := hc.Healthy(ctx); err != nil {
			return err
		}
	}
	last := l.lastCommit.Load()
	if last == nil {
		return nil
	}
	p, ok := l.cfg.Store.(Prober)
	if !ok {
		return last.err
	}
	if err := p.Probe(ctx); err != nil {
		return err
	}
	// Writes succeed again; a commit that failed meanwhile keeps its
	// own outcome.
	l.lastCommit.CompareAndSwap(last, nil)
	return nil
}
