package testkit

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/writhq/writ/internal/ledger"
)

// Recorder keeps the events appended to it in memory, for the tests of a
// package that records events without a ledger of its own (identity, policy,
// the rate limiter). It is safe for concurrent use; its zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	events []ledger.Event
	err    error
}

// Append records e at the next index, or returns the error set with Fail.
func (r *Recorder) Append(_ context.Context, e ledger.Event) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.events = append(r.events, e)
	return uint64(len(r.events) - 1), nil
}

// Fail makes every later Append return err, and nil makes them work again.
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// Events returns the events recorded, in order.
func (r *Recorder) Events() []ledger.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ledger.Event(nil), r.events...)
}

// Reset forgets the events recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// CountingStore is a ledger store that counts the leaves read back from it
// with ReadLeaves: how a test tells that a follower handed the commits
// read none of them again.
type CountingStore struct {
	ledger.Store
	Read atomic.Int64
}

// ReadLeaves reads from the store and counts what it returns.
func (c *CountingStore) ReadLeaves(ctx context.Context, from, to uint64) ([][]byte, error) {
	leaves, err := c.Store.ReadLeaves(ctx, from, to)
	c.Read.Add(int64(len(leaves)))
	return leaves, err
}
