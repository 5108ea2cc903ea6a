// Package testkit holds what writ's tests share for waiting on things that
// happen in the background, and for letting time pass without sleeping:
//
//   - Eventually (and Poll, for test frameworks without testing.TB) retries
//     a condition until it holds or a deadline passes, so that no test
//     waits forever and none bets on how long a goroutine takes.
//   - Clock is a settable clock for code that takes a Now func.
//   - FreePort names a loopback port for a child process that must bind a
//     port itself and cannot report one it picked.
//   - Recorder keeps appended ledger events in memory, for tests of what a
//     package records.
//
// It is imported by tests only.
package testkit

import (
	"net"
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

// FreePort returns a loopback TCP port that nothing listened on a moment
// ago. The port is released before it is returned, so another process may
// take it before the caller's child binds it: code in this process listens
// on 127.0.0.1:0 and passes the listener instead, and a child that reports
// the address it bound is better started on port 0. FreePort is for the
// rest (a child told its port in its configuration).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
