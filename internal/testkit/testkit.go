// Package testkit holds what writ's tests share for waiting on things that
// happen in the background, and for letting time pass without sleeping:
//
//   - Eventually (and Poll, for test frameworks without testing.TB) retries
//     a condition until it holds or a deadline passes, so that no test
//     waits forever and none bets on how long a goroutine takes.
//   - Clock is a settable clock for code that takes a Now func.
//
// It is imported by tests only.
package testkit

import (
	"sync"
	"testing"
	"time"
)

// Poll calls cond until it returns nil, and returns nil then; once within
// has passed it returns cond's last error. It waits a little longer after
// each failed try (from 1ms up to 50ms), so a condition that holds soon is
// seen soon and one that takes long does not spin.
func Poll(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(min(wait, time.Until(deadline)))
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Eventually polls cond, as Poll does, and fails the test with cond's last
// error if it does not return nil within the deadline.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(within, cond); err != nil {
		t.Fatalf("after %s: %v", within, err)
	}
}

// Clock is a clock that moves only when told to. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
