package task

// Counts are how many tasks are active, how many approval requests an
// approver can still decide, and how many calls are in flight (authorized,
// their results not recorded), now: the server's gauges.
type Counts struct {
	ActiveTasks      int
	PendingApprovals int
	// CallsHeld are the calls in flight the state holds in memory,
	// CallsPastWindow those past its window, which it only counts and
	// whose results are looked up in the store (spill.go).
	CallsHeld, CallsPastWindow int
}

// Counts counts the state as of now. It walks every task and approval
// under the state's lock, as the sweeper does each second, so it is for a
// scrape every few seconds, not for a request's path.
func (s *Service) Counts() Counts {
	s.followForRead()
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	c := Counts{CallsHeld: s.st.actions.len(), CallsPastWindow: s.st.spilledN}
	for _, t := range s.st.tasks {
		if t.State == StateActive && now.Before(t.ExpiresAt) {
			c.ActiveTasks++
		}
	}
	for _, a := range s.st.approvals {
		if decidable(a, s.st.tasks[a.TaskID], "", now) {
			c.PendingApprovals++
		}
	}
	return c
}
