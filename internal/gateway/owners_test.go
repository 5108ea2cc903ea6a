package gateway

import (
	"testing"
	"time"
)

// TestOwners: a session's task is remembered per server until the agent
// ends the session, or it goes unused for longer than the SDK keeps it.
func TestOwners(t *testing.T) {
	var o owners
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	o.opened("up", "S1", "tsk_a", t0)
	o.opened("up", "S2", "tsk_b", t0)
	if task, ok := o.of("up", "S1", t0); !ok || task != "tsk_a" {
		t.Errorf("S1: %q %v, want tsk_a", task, ok)
	}
	if _, ok := o.of("other", "S1", t0); ok {
		t.Error("a session ID is known on another server")
	}
	o.closed("up", "S1")
	if _, ok := o.of("up", "S1", t0); ok {
		t.Error("an ended session is still known")
	}
	// S2 is used at t0+20m; S3 opened at t0+40m sweeps nothing yet used.
	o.of("up", "S2", t0.Add(20*time.Minute))
	o.opened("up", "S3", "tsk_c", t0.Add(40*time.Minute))
	if _, ok := o.of("up", "S2", t0.Add(40*time.Minute)); !ok {
		t.Error("a session used 20 minutes ago was forgotten")
	}
	// Unused past the idle timeout, S2 goes at the next sweep.
	o.opened("up", "S4", "tsk_d", t0.Add(40*time.Minute+SessionIdleTimeout+2*time.Minute))
	if _, ok := o.of("up", "S2", t0.Add(40*time.Minute+SessionIdleTimeout+2*time.Minute)); ok {
		t.Error("a session unused for longer than the idle timeout is still known")
	}
}
