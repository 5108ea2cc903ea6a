package task

import (
	"maps"
	"reflect"

	"github.com/google/go-cmp/cmp"
)

// StateDiff returns how the state of a differs from b's, "" when it does
// not: every task, approval, credential and action, and what was skipped.
func StateDiff(a, b *Service) string {
	a.smu.Lock()
	defer a.smu.Unlock()
	b.smu.Lock()
	defer b.smu.Unlock()
	// The ring of recent completions is compared as a set: a lone
	// server applies concurrent commits in the order they return, a
	// replay in index order, and the ring is the same set either way
	// until it wraps.
	ring := cmp.Comparer(func(x, y recentDone) bool { return maps.Equal(x.tasks, y.tasks) })
	return cmp.Diff(a.st, b.st, ring, cmp.Exporter(func(reflect.Type) bool { return true }))
}

// StatePosition returns the first index the state of s has not applied.
func StatePosition(s *Service) uint64 {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.next
}

// ActionsHeld returns how many actions the state of s holds.
func ActionsHeld(s *Service) int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.st.InFlight()
}

// SetRecentKept sets how many completed actions a state made afterwards
// remembers without the store, until the returned function restores it.
func SetRecentKept(n int) (restore func()) {
	old := recentKept
	recentKept = n
	return func() { recentKept = old }
}
